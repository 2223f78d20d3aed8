//! Namespaces: their sockets, rooms, middlewares and connection state recovery store.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use iolite_engine::Sid;
use serde_json::Value;

use crate::config::{ParserKind, Recovery};
use crate::error::ConnectError;
use crate::handler::ConnectFn;
use crate::io::IoInner;
use crate::operators::BroadcastOperators;
use crate::parser::{Namespace as NspName, Packet};
use crate::room::{Room, RoomIndex, Target};
use crate::socket::SocketRef;
use crate::sync::{lock, read, write};

pub(crate) type Middleware = Arc<
    dyn Fn(SocketRef) -> std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectError>> + Send>>
        + Send
        + Sync,
>;

const SHARDS: usize = 16;

struct Session {
    sid: Sid,
    rooms: Vec<Room>,
    data: Value,
    disconnected_at: Instant,
}

struct StoredPacket {
    offset: String,
    target: Target,
    packet: Packet,
    at: Instant,
}

pub(crate) struct RecoveryStore {
    pub(crate) config: Recovery,
    sessions: Mutex<HashMap<Sid, Session>>,
    packets: Mutex<VecDeque<StoredPacket>>,
    next: AtomicU64,
    prefix: String,
}

/// A session restored for a reconnecting client.
pub(crate) struct Restored {
    pub(crate) sid: Sid,
    pub(crate) pid: Sid,
    pub(crate) rooms: Vec<Room>,
    pub(crate) data: Value,
    pub(crate) missed: Vec<Packet>,
}

/// A namespace: a handle to its sockets and rooms. Cheap to clone.
#[derive(Clone)]
pub struct Namespace(pub(crate) Arc<NsInner>);

pub(crate) struct NsInner {
    pub(crate) name: String,
    pub(crate) nsp: NspName,
    pub(crate) io: Weak<IoInner>,
    sockets: Box<[RwLock<HashMap<Sid, SocketRef>>]>,
    pub(crate) rooms: RoomIndex,
    pub(crate) connect: RwLock<Option<ConnectFn>>,
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) recovery: Option<RecoveryStore>,
    ack_ids: AtomicU64,
    parser: ParserKind,
}

impl NsInner {
    pub(crate) fn new(
        name: NspName,
        io: Weak<IoInner>,
        recovery: Option<Recovery>,
        parser: ParserKind,
    ) -> Self {
        let mut prefix = [0u8; 4];
        let _ = getrandom::fill(&mut prefix);
        Self {
            name: name.as_str().to_owned(),
            nsp: name,
            io,
            sockets: (0..SHARDS).map(|_| RwLock::default()).collect(),
            rooms: RoomIndex::new(),
            connect: RwLock::default(),
            middlewares: RwLock::default(),
            recovery: recovery.map(|config| RecoveryStore {
                config,
                sessions: Mutex::default(),
                packets: Mutex::default(),
                next: AtomicU64::new(0),
                prefix: format!("{:08x}", u32::from_le_bytes(prefix)),
            }),
            ack_ids: AtomicU64::new(0),
            parser,
        }
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

    fn shard(&self, sid: &Sid) -> &RwLock<HashMap<Sid, SocketRef>> {
        let b = sid.as_str().as_bytes();
        let i = usize::from(b.first().copied().unwrap_or(0)) % SHARDS;
        &self.sockets[i]
    }

    pub(crate) fn get_socket(&self, sid: &Sid) -> Option<SocketRef> {
        read(self.shard(sid)).get(sid).cloned()
    }

    pub(crate) fn add_socket(&self, socket: SocketRef) {
        write(self.shard(&socket.id)).insert(socket.id, socket);
    }

    pub(crate) fn remove_socket(&self, sid: Sid) {
        write(self.shard(&sid)).remove(&sid);
    }

    pub(crate) fn all_sockets(&self) -> Vec<SocketRef> {
        let mut v = Vec::new();
        for s in self.sockets.iter() {
            v.extend(read(s).values().cloned());
        }
        v
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends a recovery offset to an EVENT (as the last argument, where Node's client
    /// reads it) and keeps the packet for clients that drop before it reaches them.
    pub(crate) fn store_for_recovery(&self, packet: &mut Packet, target: &Target) {
        let Some(store) = &self.recovery else { return };
        let n = store.next.fetch_add(1, Ordering::Relaxed);
        let offset = format!("{}-{n}", store.prefix);
        if let Value::Array(a) = &mut packet.data {
            a.push(Value::String(offset.clone()));
        }
        let now = Instant::now();
        let mut packets = lock(&store.packets);
        while packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > store.config.max_disconnection_duration)
        {
            packets.pop_front();
        }
        packets.push_back(StoredPacket {
            offset,
            target: target.clone(),
            packet: packet.clone(),
            at: now,
        });
    }

    pub(crate) fn persist_session(&self, sid: Sid, pid: Sid, rooms: Vec<Room>, data: Value) {
        let Some(store) = &self.recovery else { return };
        let now = Instant::now();
        let mut sessions = lock(&store.sessions);
        sessions.retain(|_, s| {
            now.duration_since(s.disconnected_at) <= store.config.max_disconnection_duration
        });
        sessions.insert(
            pid,
            Session {
                sid,
                rooms,
                data,
                disconnected_at: now,
            },
        );
    }

    /// Restores the session of `pid` with the packets sent after `offset` that it would
    /// have received, and hands it to `register` while new broadcasts are held back, so
    /// the client gets the missed packets before any new one and none twice. `None`
    /// (unknown or expired session, or an offset no longer stored) means the client
    /// connects as new, as with Node.
    pub(crate) fn restore_session<R>(
        &self,
        pid: &str,
        offset: &str,
        register: impl FnOnce(Restored) -> R,
    ) -> Option<R> {
        let store = self.recovery.as_ref()?;
        let pid = Sid::parse(pid).ok()?;
        let session = lock(&store.sessions).remove(&pid)?;
        if session.disconnected_at.elapsed() > store.config.max_disconnection_duration {
            return None;
        }
        let packets = lock(&store.packets);
        let index = packets.iter().position(|p| p.offset == offset)?;
        let missed = packets
            .iter()
            .skip(index + 1)
            .filter(|p| RoomIndex::matches(&session.rooms, &p.target))
            .map(|p| p.packet.clone())
            .collect();
        let r = register(Restored {
            sid: session.sid,
            pid,
            rooms: session.rooms,
            data: session.data,
            missed,
        });
        drop(packets);
        Some(r)
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

    /// Every room with at least one socket.
    pub fn rooms(&self) -> Vec<Room> {
        self.0.rooms.all_rooms()
    }
}
