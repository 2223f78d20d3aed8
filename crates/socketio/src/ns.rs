//! Namespaces: their sockets, rooms, middlewares and connection state recovery store.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use iolite_engine::Sid;
use serde_json::Value;

use crate::adapter::{
    Adapter, AdapterError, AdapterFactory, InMemoryAdapter, LocalNamespace, ServerAck,
};
use crate::config::{ParserKind, Recovery};
use crate::error::ConnectError;
use crate::handler::ConnectFn;
use crate::handler_list::CommonHandlers;
use crate::io::IoInner;
use crate::operators::BroadcastOperators;
use crate::parser::Namespace as NspName;
use crate::room::{Room, RoomIndex};
use crate::socket::SocketRef;
use crate::sync::{read, write};

pub(crate) type Middleware = Arc<
    dyn Fn(SocketRef) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>
        + Send
        + Sync,
>;

/// A namespace: a handle to its sockets and rooms. Cheap to clone.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NsInner>);

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) nsp: NspName,
    pub(crate) io: Weak<IoInner>,
    /// Its sockets and their rooms.
    pub(crate) rooms: RoomIndex,
    pub(crate) connect: RwLock<Option<ConnectFn>>,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) adapter: Arc<dyn Adapter>,
    /// Whether connection state recovery is on (sockets get a private id).
    pub(crate) recovery: bool,
    server_handlers: RwLock<HashMap<String, ServerSideFn>>,
    /// The event handlers its sockets share (see
    /// [`crate::handler_list::HandlerList::share`]).
    pub(crate) common_handlers: CommonHandlers,
    ack_ids: AtomicU64,
    parser: ParserKind,
}

type ServerSideFn = Arc<dyn Fn(Vec<Value>, Option<ServerAck>) + Send + Sync>;

impl NsInner {
    pub(crate) fn new(
        name: NspName,
        io: Weak<IoInner>,
        recovery: Option<Recovery>,
        parser: ParserKind,
        adapter: Option<&AdapterFactory>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak| {
            let local = LocalNamespace::new(weak.clone(), name.as_str(), recovery.clone());
            let adapter: Arc<dyn Adapter> = match adapter {
                Some(f) => f(local),
                None => Arc::new(InMemoryAdapter::new(local)),
            };
            Self {
                name: name.as_str().to_owned(),
                nsp: name,
                io,
                rooms: RoomIndex::new(adapter.clone()),
                connect: RwLock::default(),
                middlewares: RwLock::default(),
                adapter,
                recovery: recovery.is_some(),
                server_handlers: RwLock::default(),
                common_handlers: CommonHandlers::default(),
                ack_ids: AtomicU64::new(0),
                parser,
            }
        })
    }

    pub(crate) fn parser(&self) -> ParserKind {
        self.parser
    }

    pub(crate) fn state(&self) -> Arc<http::Extensions> {
        self.io
            .upgrade()
            .map(|io| io.state.clone())
            .unwrap_or_default()
    }

    pub(crate) fn get_socket(&self, sid: &Sid) -> Option<SocketRef> {
        self.rooms.socket(sid)
    }

    pub(crate) fn all_sockets(&self) -> Vec<SocketRef> {
        self.rooms.sockets()
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn socket_count(&self) -> usize {
        self.rooms.socket_count()
    }

    pub(crate) fn server_side_event(&self, event: &str, args: Vec<Value>, ack: Option<ServerAck>) {
        let h = read(&self.server_handlers).get(event).cloned();
        if let Some(h) = h {
            h(args, ack);
        }
    }
}

impl Namespace {
    /// The namespace name (`/`, `/admin`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Adds a connect middleware (Node's `nsp.use`): it runs for each new socket before
    /// it connects, in order; an `Err` refuses the connection with `connect_error`.
    pub fn use_middleware<F, Fut>(&self, f: F) -> &Self
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        let mw: Middleware = Arc::new(move |s| Box::pin(f(s)));
        write(&self.0.middlewares).push(mw);
        self
    }

    /// A broadcast to every socket in the namespace.
    pub fn broadcast(&self) -> BroadcastOperators {
        BroadcastOperators::new(self.0.clone())
    }

    /// A broadcast to a room.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperators {
        self.broadcast().to(room)
    }

    /// A broadcast to everyone but the sockets in a room.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperators {
        self.broadcast().except(room)
    }

    /// Emits to every socket in the namespace.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), crate::EmitError> {
        self.broadcast().emit(event, data)
    }

    /// The connected sockets on this node.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.0.all_sockets()
    }

    /// The socket with this id, if connected here.
    pub fn get_socket(&self, id: &Sid) -> Option<SocketRef> {
        self.0.get_socket(id)
    }

    /// Every room with at least one socket on this node.
    pub fn rooms(&self) -> Vec<Room> {
        self.0.rooms.all_rooms()
    }

    /// The namespace's adapter (in-memory unless the server was built with another).
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.0.adapter
    }

    /// How many nodes serve this namespace (1 without a cluster adapter).
    pub async fn server_count(&self) -> usize {
        self.0.adapter.server_count().await
    }

    /// Handles a server-side event from the other nodes (Node's `io.on(event, ...)` for
    /// `serverSideEmit`). The handler gets the arguments and, when the sender waits for
    /// answers, a [`ServerAck`] to answer with.
    pub fn on_server_side<F>(&self, event: impl Into<String>, f: F) -> &Self
    where
        F: Fn(Vec<Value>, Option<ServerAck>) + Send + Sync + 'static,
    {
        write(&self.0.server_handlers).insert(event.into(), Arc::new(f));
        self
    }

    /// Emits an event to the other nodes' server-side handlers (Node's `serverSideEmit`).
    pub fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<(), AdapterError> {
        self.0.adapter.server_side_emit(event.to_owned(), args)
    }

    /// [`Namespace::server_side_emit`] waiting for each other node's answer, at most
    /// `timeout`.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, AdapterError> {
        self.0
            .adapter
            .server_side_emit_with_ack(event.to_owned(), args, timeout)
            .await
    }
}
