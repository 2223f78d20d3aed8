//! Adapters: how a namespace reaches its sockets.
//!
//! The in-memory adapter ([`InMemoryAdapter`], the default) serves one node. A cluster
//! adapter (Redis, a database, a message bus) also publishes what a node does to the other
//! nodes and answers their requests, acting on this node's sockets through the
//! [`LocalNamespace`] it is built with. The trait follows Node's `Adapter` and
//! `ClusterAdapter` method for method (`broadcast`, `broadcastWithAck`, `serverCount`,
//! `fetchSockets`, `addSockets`, `delSockets`, `disconnectSockets`, `serverSideEmit`,
//! `persistSession`, `restoreSession`), so a port of `@socket.io/redis-adapter` maps onto it.
//!
//! Every method has a default that acts on this node only, which is all the in-memory
//! adapter needs; a cluster adapter overrides them.
//!
//! ```
//! use std::sync::Arc;
//! use iolite::adapter::{Adapter, AdapterError, BroadcastOptions, LocalNamespace};
//! use iolite::parser::Packet;
//!
//! /// Counts broadcasts, then delivers them on this node.
//! struct Counting { local: LocalNamespace, n: std::sync::atomic::AtomicUsize }
//!
//! impl Adapter for Counting {
//!     fn local(&self) -> &LocalNamespace { &self.local }
//!     fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
//!         self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         self.local.broadcast(&packet, &opts);
//!         Ok(())
//!     }
//! }
//!
//! let io = iolite::SocketIo::builder()
//!     .adapter(|local| Arc::new(Counting { local, n: Default::default() }) as Arc<dyn Adapter>)
//!     .build();
//! # let _ = io;
//! ```

mod local;
mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use iolite_engine::Sid;
use serde_json::Value;
use tokio::sync::mpsc;

pub use local::{LocalNamespace, ServerAck};
pub use memory::InMemoryAdapter;

use crate::ack::AckResponse;
use crate::parser::Packet;
use crate::room::Room;
use crate::socket::{Handshake, Socket};
use crate::sync::lock;

/// A boxed future, as adapter methods return (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Builds the adapter of each namespace (Node's `adapter` option).
pub type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

/// The flags of a broadcast (Node's `BroadcastFlags`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// Dropped for clients that cannot take it right now.
    pub volatile: bool,
    /// This node only: a cluster adapter does not publish it.
    pub local: bool,
    /// Node's `compress` flag, carried for cluster adapters (permessage-deflate follows
    /// the server's WebSocket settings).
    pub compress: Option<bool>,
    /// How long a broadcast with acks waits.
    pub timeout: Option<Duration>,
}

/// Which sockets a broadcast or a request reaches (Node's `BroadcastOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms.
    pub except: Vec<Room>,
    /// The flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// The one socket with this id (its own room), wherever it is connected.
    pub fn socket(id: Sid) -> Self {
        Self {
            rooms: vec![Room::from(id.as_str())],
            ..Self::default()
        }
    }

    /// Whether a socket in `rooms` is selected (for replaying stored packets).
    pub fn matches(&self, rooms: &[Room]) -> bool {
        let in_any = |list: &[Room]| list.iter().any(|r| rooms.contains(r));
        (self.rooms.is_empty() || in_any(&self.rooms)) && !in_any(&self.except)
    }
}

/// Why an adapter could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// The cluster link is down (the local part was still done where it applies).
    #[error("the adapter cannot reach the cluster: {0}")]
    Unavailable(String),
    /// The other nodes did not all answer in time.
    #[error("the cluster request timed out")]
    Timeout,
    /// This adapter does not do that.
    #[error("the adapter does not support {0}")]
    Unsupported(&'static str),
}

/// A socket as any node describes it (Node's `RemoteSocket` data): what
/// [`BroadcastOperators::fetch_sockets`](crate::BroadcastOperators::fetch_sockets) returns.
#[derive(Clone, Debug)]
pub struct SocketInfo {
    /// The socket id.
    pub id: Sid,
    /// Its rooms (its own room included).
    pub rooms: Vec<Room>,
    /// Its data ([`Socket::set_data`]).
    pub data: Value,
    /// Its handshake.
    pub handshake: Handshake,
}

/// A disconnected socket's state kept for connection state recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct PersistedSession {
    /// The socket id it gets back.
    pub sid: Sid,
    /// The private id the client presents to recover.
    pub pid: Sid,
    /// Its rooms.
    pub rooms: Vec<Room>,
    /// Its data.
    pub data: Value,
}

/// A session handed back to a reconnecting client, with the packets it missed in order.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoredSession {
    /// The session.
    pub session: PersistedSession,
    /// The packets broadcast to it after the offset it presented, oldest first.
    pub missed: Vec<Packet>,
}

/// What [`Adapter::restore_session`] calls with the restored session: it registers the
/// socket and sends the missed packets. An adapter that can should call it while holding
/// back new broadcasts, so the client gets none twice and misses none.
pub type RegisterSession<'a> = Box<dyn FnOnce(RestoredSession) + Send + 'a>;

/// Where the acks of a broadcast go: each node reports how many of its clients it asked,
/// then their responses as they come.
#[derive(Clone)]
pub struct AckCollector {
    tx: mpsc::UnboundedSender<AckEvent>,
    shared: Arc<AckShared>,
}

#[derive(Default)]
pub(crate) struct AckShared {
    announced: std::sync::atomic::AtomicUsize,
    /// Local sockets asked, to forget the request on those that never answer.
    asked: Mutex<Vec<(u64, Weak<Socket>)>>,
}

impl Drop for AckShared {
    fn drop(&mut self) {
        let asked = std::mem::take(&mut *lock(&self.asked));
        for (id, s) in asked {
            if let Some(s) = s.upgrade() {
                s.forget_ack(id);
            }
        }
    }
}

/// What an [`AckCollector`] receives.
#[derive(Debug)]
pub enum AckEvent {
    /// One node's count of the clients it asked.
    Clients(usize),
    /// One client's response.
    Response(AckResponse),
}

impl AckCollector {
    /// A collector and the receiver of what it collects: for a cluster adapter answering
    /// another node's broadcast with acks, which hands the collector to
    /// [`LocalNamespace::broadcast_with_ack`] and relays the count and the responses. The
    /// requests on the local sockets are forgotten when every clone of the collector is
    /// dropped.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<AckEvent>) {
        let (c, rx, _) = Self::new();
        (c, rx)
    }

    pub(crate) fn new() -> (Self, mpsc::UnboundedReceiver<AckEvent>, Arc<AckShared>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(AckShared::default());
        (
            Self {
                tx,
                shared: shared.clone(),
            },
            rx,
            shared,
        )
    }

    /// One node's count of the clients it asked (each node reports once).
    pub fn client_count(&self, n: usize) {
        self.shared
            .announced
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let _ = self.tx.send(AckEvent::Clients(n));
    }

    /// One client's response.
    pub fn response(&self, r: AckResponse) {
        let _ = self.tx.send(AckEvent::Response(r));
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<AckEvent> {
        self.tx.clone()
    }

    pub(crate) fn asked(&self, id: u64, socket: &Arc<Socket>) {
        lock(&self.shared.asked).push((id, Arc::downgrade(socket)));
    }
}

impl AckShared {
    pub(crate) fn announced(&self) -> usize {
        self.announced.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A namespace's adapter. See the [module docs](self).
pub trait Adapter: Send + Sync + 'static {
    /// This node's side of the namespace.
    fn local(&self) -> &LocalNamespace;

    /// Sends `packet` to the sockets `opts` selects, here and (unless `opts.flags.local`)
    /// on the other nodes.
    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        self.local().broadcast(&packet, &opts);
        Ok(())
    }

    /// Sends `packet` asking each selected socket for an ack: every node reports its
    /// client count to `acks`, then the responses.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        acks: AckCollector,
    ) -> Result<(), AdapterError> {
        self.local().broadcast_with_ack(&packet, &opts, &acks);
        Ok(())
    }

    /// How many nodes the cluster has, this one included.
    fn server_count(&self) -> BoxFuture<'_, usize> {
        Box::pin(async { 1 })
    }

    /// The selected sockets on every node.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move { Ok(self.local().fetch_sockets(&opts)) })
    }

    /// Makes the selected sockets, on every node, join `rooms`.
    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        self.local().add_sockets(&opts, &rooms);
        Ok(())
    }

    /// Makes the selected sockets, on every node, leave `rooms`.
    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        self.local().del_sockets(&opts, &rooms);
        Ok(())
    }

    /// Disconnects the selected sockets on every node (`close`: their whole connection).
    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        self.local().disconnect_sockets(&opts, close);
        Ok(())
    }

    /// Every room with a socket, on every node.
    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move { Ok(self.local().rooms()) })
    }

    /// Emits an event to the other nodes' server-side handlers
    /// ([`Namespace::on_server_side`](crate::Namespace::on_server_side)). With one node
    /// there is nobody to tell.
    fn server_side_emit(&self, _event: String, _args: Vec<Value>) -> Result<(), AdapterError> {
        Ok(())
    }

    /// [`Adapter::server_side_emit`] waiting for every other node's answer.
    fn server_side_emit_with_ack(
        &self,
        _event: String,
        _args: Vec<Value>,
        _timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Value>, AdapterError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Keeps a disconnected socket's session for connection state recovery.
    fn persist_session(&self, _session: PersistedSession) {}

    /// Gives back the session of `pid` and the packets broadcast after `offset` to
    /// `register`; `Ok(false)` when there is none to restore (unknown or expired session,
    /// offset no longer kept): the client then connects as new.
    fn restore_session<'a>(
        &'a self,
        _pid: &'a str,
        _offset: &'a str,
        _register: RegisterSession<'a>,
    ) -> BoxFuture<'a, Result<bool, AdapterError>> {
        Box::pin(async { Ok(false) })
    }

    /// The namespace is going away (the server closed): stop tasks, unsubscribe.
    fn close(&self) {}

    /// A room got its first socket on this node (`created`, Node's `create-room` event) or
    /// lost its last one (`delete-room`): for adapters that subscribe per room. Called after
    /// the change, outside the room index's locks, so joins and leaves racing on one room
    /// may report out of order: check [`LocalNamespace::has_room`] for the current state.
    fn room_changed(&self, _room: &Room, _created: bool) {}
}
