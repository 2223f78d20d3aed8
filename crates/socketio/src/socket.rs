//! A socket: one client connected to one namespace.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use iolite_engine::{Sid, Transport};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::ack::{AckFuture, AckRequest, AckResponse, AckSlot};
use crate::adapter::{BroadcastOptions, PersistedSession};
use crate::client::Conn;
use crate::error::{DisconnectReason, EmitError};
use crate::handler::{run, BoxFuture, EventContext, EventFn, EventHandler};
use crate::handler_list::HandlerList;
use crate::ns::NsInner;
use crate::operators::BroadcastOperators;
use crate::outgoing::encode;
use crate::parser::{Packet, PacketType, RESERVED_EVENTS};
use crate::room::Room;
use crate::sync::{lock, read, write};

/// A shared reference to a socket, what handlers receive.
pub type SocketRef = Arc<Socket>;

/// The headers of the request that opened the Engine.IO session: a [`http::HeaderMap`]
/// (it derefs to one) shared by the session and every socket of it, not copied per
/// namespace.
#[derive(Clone)]
pub struct Headers(Arc<iolite_engine::RequestHead>);

impl Headers {
    /// The head of the opening request they belong to.
    pub(crate) fn of(request: Arc<iolite_engine::RequestHead>) -> Self {
        Self(request)
    }
}

impl std::ops::Deref for Headers {
    type Target = http::HeaderMap;

    /// The map is built on first use (see [`iolite_engine::RequestHead`]).
    fn deref(&self) -> &http::HeaderMap {
        self.0.headers()
    }
}

impl From<http::HeaderMap> for Headers {
    fn from(headers: http::HeaderMap) -> Self {
        Self(Arc::new(iolite_engine::RequestHead::from_headers(headers)))
    }
}

impl Default for Headers {
    fn default() -> Self {
        Self::from(http::HeaderMap::new())
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// What the client sent when it connected (Node's `socket.handshake`).
///
/// The URL and the peer address are read from the opening request's head, which the
/// session keeps anyway ([`Headers`]), rather than copied into every socket.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// `None` for `{}` (no auth payload): a JSON value is 72 bytes, and many clients send
    /// none.
    auth: Option<Box<Value>>,
    headers: Headers,
    issued: SystemTime,
}

/// What [`Handshake::auth`] is when the client sent none.
static NO_AUTH: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::Object(Default::default()));

impl Handshake {
    /// A handshake made by hand (tests) or described by another node: `url` is the request
    /// target (path and query; `/` when it is not a valid one), `address` the peer's.
    pub fn new(
        auth: Value,
        headers: http::HeaderMap,
        url: &str,
        address: Option<std::net::SocketAddr>,
        issued: SystemTime,
    ) -> Self {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.headers = headers;
        parts.uri = http::Uri::try_from(url).unwrap_or_default();
        if let Some(a) = address {
            parts.extensions.insert(a);
        }
        Self::of(
            auth,
            Headers(Arc::new(iolite_engine::RequestHead::new(parts))),
            issued,
        )
    }

    fn of(auth: Value, headers: Headers, issued: SystemTime) -> Self {
        Self {
            auth: boxed_data(auth),
            headers,
            issued,
        }
    }

    /// The `auth` payload of the CONNECT packet (`{}` when there was none).
    pub fn auth(&self) -> &Value {
        self.auth.as_deref().unwrap_or(&NO_AUTH)
    }

    /// Headers of the request that opened the Engine.IO session.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// When the socket connected.
    pub fn issued(&self) -> SystemTime {
        self.issued
    }

    /// The URL of the opening request as the client sent it (path and query).
    pub fn url(&self) -> &str {
        self.headers.0.target()
    }

    /// The peer address, when the server put it in the request extensions.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        self.headers.0.remote_addr()
    }

    /// A query parameter of the handshake URL, decoded as `URLSearchParams` (the last of
    /// repeated keys wins).
    pub fn query(&self, name: &str) -> Option<String> {
        let q = self.url().split_once('?')?.1;
        iolite_engine::query_param(q, name).map(|v| v.into_owned())
    }
}

type DisconnectFn = Box<dyn FnOnce(SocketRef, DisconnectReason) -> BoxFuture + Send>;
type OutgoingFn = Arc<dyn Fn(&str, &[Value]) + Send + Sync>;
type PacketMiddleware = Arc<dyn Fn(&SocketRef, &str, &[Value]) -> Result<(), String> + Send + Sync>;

/// A socket's catch-all handlers and per-packet middlewares.
#[derive(Default)]
struct Hooks {
    any: Vec<EventFn>,
    any_outgoing: Vec<OutgoingFn>,
    packet_middlewares: Vec<PacketMiddleware>,
}

/// One client in one namespace (Node's server-side `Socket`).
pub struct Socket {
    pub(crate) id: Sid,
    pub(crate) pid: Option<Sid>,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) conn: Arc<Conn>,
    handshake: Handshake,
    recovered: bool,
    pub(crate) connected: AtomicBool,
    /// By event name. A list, not a map: a socket has a few handlers, and a map's table
    /// cost 0.3 KiB per idle socket.
    handlers: RwLock<HandlerList>,
    /// Catch-all handlers and per-packet middlewares: most sockets have none, so they hold
    /// no lists until one is registered.
    hooks: RwLock<Option<Box<Hooks>>>,
    disconnect: Mutex<Vec<DisconnectFn>>,
    /// By ack id. Ids only grow, so an ordered map stays cheap, and an empty one is 24
    /// bytes where a hash map was 48.
    pub(crate) acks: Mutex<BTreeMap<u64, AckSlot>>,
    /// `None` for the default `{}`: a JSON value is 72 bytes, and most sockets never set one.
    data: Mutex<Option<Box<Value>>>,
    extensions: Mutex<http::Extensions>,
    /// Rooms joined by middlewares and packets held for the connect handler, while the
    /// socket connects.
    connecting: Mutex<Connecting>,
}

/// What a socket keeps while it connects: 16 bytes, and the lists are allocated only if
/// something goes in them (two `Option<Vec>`s took 64 bytes in every socket).
struct Connecting {
    /// Until the socket connects (or is closed): joins go to `rooms`.
    rooms_open: bool,
    /// Until the connect handler has registered its handlers: packets go to `held`, to be
    /// dispatched in order once it has.
    holding: bool,
    lists: Option<Box<ConnectingLists>>,
}

#[derive(Default)]
struct ConnectingLists {
    rooms: Vec<Room>,
    held: Vec<Packet>,
}

impl Connecting {
    fn lists(&mut self) -> &mut ConnectingLists {
        self.lists.get_or_insert_with(Box::default)
    }

    fn rooms(&self) -> &[Room] {
        self.lists.as_ref().map_or(&[], |l| &l.rooms)
    }

    /// Frees the lists once neither is in use.
    fn tidy(&mut self) {
        if !self.rooms_open && !self.holding {
            self.lists = None;
        }
    }
}

/// Socket data as stored: the default empty object as `None`.
fn boxed_data(v: Value) -> Option<Box<Value>> {
    match &v {
        Value::Object(m) if m.is_empty() => None,
        _ => Some(Box::new(v)),
    }
}

/// Packets held for a socket whose connect handler has not run yet. The window is the
/// handler's first poll, so a client can only fill it by flooding; past this it is cut off.
const MAX_HELD: usize = 1024;

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.ns.name)
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        ns: Arc<NsInner>,
        conn: Arc<Conn>,
        auth: Value,
        restored: Option<(Sid, Sid, Value)>,
    ) -> Result<Self, iolite_engine::RandomError> {
        let handshake = Handshake::of(auth, Headers::of(conn.shared_request()), SystemTime::now());
        let recovery = ns.recovery;
        let (id, pid, data, recovered) = match restored {
            Some((id, pid, data)) => (id, Some(pid), data, true),
            None => (
                Sid::generate()?,
                if recovery {
                    Some(Sid::generate()?)
                } else {
                    None
                },
                Value::Object(Default::default()),
                false,
            ),
        };
        Ok(Self {
            id,
            pid,
            ns,
            conn,
            handshake,
            recovered,
            connected: AtomicBool::new(false),
            handlers: RwLock::default(),
            hooks: RwLock::default(),
            disconnect: Mutex::default(),
            acks: Mutex::default(),
            data: Mutex::new(boxed_data(data)),
            extensions: Mutex::default(),
            connecting: Mutex::new(Connecting {
                rooms_open: true,
                holding: true,
                lists: None,
            }),
        })
    }

    /// The socket id (not the Engine.IO session id, which stays private as in Node).
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The namespace name.
    pub fn ns(&self) -> &str {
        &self.ns.name
    }

    /// What the client sent when connecting.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Whether this connection recovered an earlier session (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The transport the client is on now.
    pub fn transport(&self) -> Transport {
        self.conn.transport()
    }

    pub(crate) fn io_state(&self) -> Arc<http::Extensions> {
        self.ns.state()
    }

    /// Registers the handler for an event (replacing an earlier one). The name is copied,
    /// inline up to 22 bytes: registering with a `&str` allocates nothing for it.
    pub fn on<H, A>(&self, event: impl AsRef<str>, handler: H)
    where
        H: EventHandler<A>,
        A: 'static,
    {
        write(&self.handlers).set(event.as_ref(), EventFn::new(handler));
    }

    /// Registers a handler called for every incoming event before its own handler (Node's
    /// `socket.onAny`); extract the name with [`Event`](crate::Event).
    pub fn on_any<H, A>(&self, handler: H)
    where
        H: EventHandler<A>,
        A: 'static,
    {
        let h = EventFn::new(handler);
        self.hooks_mut(|hooks| hooks.any.push(h));
    }

    /// Registers a listener for every event this socket emits (Node's `onAnyOutgoing`).
    pub fn on_any_outgoing(&self, f: impl Fn(&str, &[Value]) + Send + Sync + 'static) {
        let f: OutgoingFn = Arc::new(f);
        self.hooks_mut(|hooks| hooks.any_outgoing.push(f));
    }

    /// Registers a per-packet middleware (Node's `socket.use`): it sees each incoming event
    /// before the handlers; an `Err` drops the event.
    pub fn use_packet(
        &self,
        f: impl Fn(&SocketRef, &str, &[Value]) -> Result<(), String> + Send + Sync + 'static,
    ) {
        let f: PacketMiddleware = Arc::new(f);
        self.hooks_mut(|hooks| hooks.packet_middlewares.push(f));
    }

    fn hooks_mut(&self, add: impl FnOnce(&mut Hooks)) {
        add(write(&self.hooks).get_or_insert_with(Box::default));
    }

    /// Registers a handler for the disconnection, with its reason.
    pub fn on_disconnect<F, Fut>(&self, f: F)
    where
        F: FnOnce(SocketRef, DisconnectReason) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        lock(&self.disconnect).push(Box::new(move |s, r| Box::pin(f(s, r))));
    }

    /// Emits an event with one argument.
    pub fn emit<T: Serialize + ?Sized>(
        self: &Arc<Self>,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emitter().emit(event, data)
    }

    /// An emit with options: binary attachments, a timeout for an ack, volatile.
    pub fn emitter(self: &Arc<Self>) -> SocketEmitter {
        SocketEmitter {
            socket: self.clone(),
            attachments: Vec::new(),
            timeout: None,
            volatile: false,
        }
    }

    /// An emit that waits at most `timeout` for the client's ack.
    pub fn timeout(self: &Arc<Self>, timeout: Duration) -> SocketEmitter {
        let mut e = self.emitter();
        e.timeout = Some(timeout);
        e
    }

    /// An emit that carries these binary attachments (referenced by placeholders).
    pub fn bin(self: &Arc<Self>, attachments: Vec<Bytes>) -> SocketEmitter {
        let mut e = self.emitter();
        e.attachments = attachments;
        e
    }

    /// An emit that may be dropped if the client cannot take it right now.
    pub fn volatile(self: &Arc<Self>) -> SocketEmitter {
        let mut e = self.emitter();
        e.volatile = true;
        e
    }

    /// Joins a room. In a connect middleware (before the socket is connected) the room is
    /// joined when the socket connects, as in Node; after a disconnect it does nothing.
    pub fn join(&self, room: impl Into<Room>) {
        if self.connected() {
            // A socket that is already gone from its namespace joins nothing.
            self.ns.rooms.join(self.id, room.into());
        } else {
            let mut c = lock(&self.connecting);
            let room = room.into();
            if c.rooms_open && !c.rooms().contains(&room) {
                c.lists().rooms.push(room);
            }
        }
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        {
            let mut c = lock(&self.connecting);
            if let (true, Some(l)) = (c.rooms_open, c.lists.as_mut()) {
                l.rooms.retain(|r| &**r != room);
            }
        }
        self.ns.rooms.leave(self.id, room);
    }

    /// The rooms this socket is in (its own id among them).
    pub fn rooms(&self) -> Vec<Room> {
        {
            let c = lock(&self.connecting);
            if c.rooms_open {
                return c.rooms().to_vec();
            }
        }
        self.ns.rooms.rooms_of(self.id)
    }

    /// The rooms joined before the socket connected; from now on joins go to the index.
    pub(crate) fn take_pending_rooms(&self) -> Vec<Room> {
        let mut c = lock(&self.connecting);
        c.rooms_open = false;
        let rooms = c.lists.as_mut().map(|l| std::mem::take(&mut l.rooms));
        c.tidy();
        rooms.unwrap_or_default()
    }

    /// A broadcast to a room, without this socket (Node's `socket.to(room)`).
    pub fn to(self: &Arc<Self>, room: impl Into<Room>) -> BroadcastOperators {
        self.broadcast().to(room)
    }

    /// A broadcast to the namespace except rooms, without this socket.
    pub fn except(self: &Arc<Self>, room: impl Into<Room>) -> BroadcastOperators {
        self.broadcast().except(room)
    }

    /// A broadcast to every socket of the namespace but this one.
    pub fn broadcast(self: &Arc<Self>) -> BroadcastOperators {
        BroadcastOperators::new(self.ns.clone()).except(Room::from(self.id.as_str()))
    }

    /// Stores serializable per-socket data (kept by connection state recovery and seen
    /// by `fetch_sockets`).
    pub fn set_data<T: Serialize>(&self, data: &T) -> Result<(), serde_json::Error> {
        *lock(&self.data) = boxed_data(serde_json::to_value(data)?);
        Ok(())
    }

    /// The per-socket data as JSON.
    pub fn data_value(&self) -> Value {
        lock(&self.data)
            .as_deref()
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// The per-socket data deserialized.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match lock(&self.data).as_deref() {
            Some(v) => T::deserialize(v),
            None => T::deserialize(&Value::Object(Map::new())),
        }
    }

    /// Local typed values for this socket (not shared with other nodes).
    pub fn extensions(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        lock(&self.extensions)
    }

    /// Disconnects the socket from its namespace: the client gets a DISCONNECT (reason
    /// `io server disconnect`) and the server `server namespace disconnect`.
    pub fn disconnect(self: &Arc<Self>) {
        if !self.connected() {
            return;
        }
        let _ = encode(self.ns.parser(), &Packet::disconnect(self.ns.nsp.clone())).send(&self.conn);
        self.close(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Disconnects every namespace of this client and closes the connection (Node's
    /// `socket.disconnect(true)`).
    pub fn disconnect_all(self: &Arc<Self>) {
        crate::client::disconnect_client(&self.conn);
    }

    /// Closes the underlying connection without a DISCONNECT (Node's
    /// `socket.conn.close()`): the client sees `transport close` and reconnects, and
    /// recovers its session if recovery is on.
    pub fn close_transport(&self) {
        self.conn.close();
    }

    pub(crate) fn send_packet(&self, packet: &Packet) -> Result<(), EmitError> {
        Ok(encode(self.ns.parser(), packet).send(&self.conn)?)
    }

    pub(crate) fn send_ack(
        &self,
        id: u64,
        args: Vec<Value>,
        attachments: Vec<Bytes>,
    ) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Closed);
        }
        let p =
            Packet::ack(self.ns.nsp.clone(), id, Value::Array(args)).with_attachments(attachments);
        self.send_packet(&p)
    }

    pub(crate) fn notify_outgoing(&self, event: &str, args: &[Value]) {
        let hooks = read(&self.hooks);
        for f in hooks.iter().flat_map(|h| &h.any_outgoing) {
            f(event, args);
        }
    }

    /// A packet for this socket from its client. Until the connect handler has had its
    /// first poll (where handlers are registered) packets are held: the client may answer
    /// the CONNECT packet before that handler has run on another thread, and Node, whose
    /// `connection` listeners run before any later packet is read, loses none of them.
    pub(crate) fn on_packet(self: &Arc<Self>, packet: Packet) {
        {
            let mut c = lock(&self.connecting);
            if c.holding {
                if c.lists.as_ref().map_or(0, |l| l.held.len()) >= MAX_HELD {
                    drop(c);
                    tracing::debug!(socket = %self.id, "too many packets before the connect handler ran");
                    self.conn.close();
                    return;
                }
                c.lists().held.push(packet);
                return;
            }
        }
        self.dispatch(packet);
    }

    /// Dispatches the packets held until now, in order, and lets later ones through. The
    /// connect handler has registered the socket's handlers by now: the list is shared
    /// with the namespace's other sockets if it is the same as theirs.
    pub(crate) fn release_held(self: &Arc<Self>) {
        write(&self.handlers).share(&self.ns.common_handlers);
        loop {
            let batch = {
                let mut c = lock(&self.connecting);
                let holding = c.holding;
                match c.lists.as_mut() {
                    Some(l) if holding && !l.held.is_empty() => std::mem::take(&mut l.held),
                    _ => {
                        // Empty: from now on packets are dispatched as they come.
                        c.holding = false;
                        c.tidy();
                        return;
                    }
                }
            };
            for p in batch {
                self.dispatch(p);
            }
        }
    }

    fn dispatch(self: &Arc<Self>, packet: Packet) {
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => self.on_event(packet),
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(id) = packet.id else { return };
                let slot = lock(&self.acks).remove(&id);
                if let Some(slot) = slot {
                    let args = match packet.data {
                        Value::Array(a) => a,
                        Value::Null => Vec::new(),
                        other => vec![other],
                    };
                    slot.deliver(AckResponse {
                        args,
                        attachments: packet.attachments,
                    });
                }
            }
            PacketType::Disconnect => self.close(DisconnectReason::ClientNamespaceDisconnect),
            _ => {}
        }
    }

    fn on_event(self: &Arc<Self>, packet: Packet) {
        let Value::Array(mut data) = packet.data else {
            return;
        };
        if data.is_empty() {
            return;
        }
        let event = match data.remove(0) {
            Value::String(s) => s,
            // socket.io-parser accepts numbers as event names; JavaScript's EventEmitter
            // then looks up the number's string.
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        {
            let hooks = read(&self.hooks);
            for mw in hooks.iter().flat_map(|h| &h.packet_middlewares) {
                if let Err(e) = mw(self, &event, &data) {
                    tracing::debug!(socket = %self.id, event, error = e, "event refused by middleware");
                    return;
                }
            }
        }
        let cx = EventContext {
            socket: self.clone(),
            event,
            args: data,
            attachments: packet.attachments,
            ack_id: packet.id,
        };
        let any: Vec<EventFn> = read(&self.hooks)
            .as_ref()
            .map(|h| h.any.clone())
            .unwrap_or_default();
        for h in any {
            let c = EventContext {
                socket: cx.socket.clone(),
                event: cx.event.clone(),
                args: cx.args.clone(),
                attachments: cx.attachments.clone(),
                ack_id: None,
            };
            match h.call(c) {
                Ok(f) => run(f),
                Err(e) => tracing::debug!(error = %e, "catch-all handler not called"),
            }
        }
        let h = read(&self.handlers).get(&cx.event);
        if let Some(h) = h {
            let event = cx.event.clone();
            match h.call(cx) {
                Ok(f) => run(f),
                Err(e) => {
                    tracing::debug!(socket = %self.id, event, error = %e, "handler not called")
                }
            }
        }
    }

    /// Ends the socket (once): recovery keeps its session if the reason allows, it leaves
    /// its rooms and namespace, pending acks fail, disconnect handlers run.
    pub(crate) fn close(self: &Arc<Self>, reason: DisconnectReason) {
        if !self.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        {
            let mut c = lock(&self.connecting);
            c.rooms_open = false;
            if let Some(l) = c.lists.as_mut() {
                l.rooms = Vec::new();
            }
            c.tidy();
        }
        if reason.is_recoverable() {
            if let Some(pid) = self.pid {
                self.ns.adapter.persist_session(PersistedSession {
                    sid: self.id,
                    pid,
                    rooms: self.rooms(),
                    data: self.data_value(),
                });
            }
        }
        self.ns.rooms.remove(self.id);
        crate::client::remove_socket(&self.conn, &self.ns.name);
        lock(&self.acks).clear();
        let handlers = std::mem::take(&mut *lock(&self.disconnect));
        for h in handlers {
            run(h(self.clone(), reason));
        }
    }

    pub(crate) fn register_ack(&self, id: u64, slot: AckSlot) {
        lock(&self.acks).insert(id, slot);
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        lock(&self.acks).remove(&id);
    }

    /// Acks this server asked this client for and is still waiting on.
    pub fn pending_acks(&self) -> usize {
        lock(&self.acks).len()
    }
}

/// An emit on one socket with options; from [`Socket::emitter`], [`Socket::timeout`],
/// [`Socket::bin`] or [`Socket::volatile`].
pub struct SocketEmitter {
    socket: SocketRef,
    attachments: Vec<Bytes>,
    timeout: Option<Duration>,
    volatile: bool,
}

impl SocketEmitter {
    /// Sets binary attachments.
    pub fn bin(mut self, attachments: Vec<Bytes>) -> Self {
        self.attachments = attachments;
        self
    }

    /// Sets the ack timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Emits with one argument.
    pub fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), EmitError> {
        let v = serde_json::to_value(data)?;
        self.emit_args(event, vec![v])
    }

    /// Emits with these arguments (zero or more).
    pub fn emit_args(self, event: &str, args: Vec<Value>) -> Result<(), EmitError> {
        self.send(event, args, None).map(|_| ())
    }

    /// Emits with one argument and waits for the client's ack.
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<AckFuture, EmitError> {
        let v = serde_json::to_value(data)?;
        self.emit_args_with_ack(event, vec![v])
    }

    /// Emits with these arguments and waits for the client's ack.
    pub fn emit_args_with_ack(self, event: &str, args: Vec<Value>) -> Result<AckFuture, EmitError> {
        let (tx, rx) = oneshot::channel();
        let timeout = self.timeout;
        let socket = Arc::downgrade(&self.socket);
        let id = self.send(event, args, Some(AckSlot::One(tx)))?;
        let request = AckRequest {
            id: id.unwrap_or_default(),
            sockets: vec![socket],
        };
        Ok(AckFuture {
            rx,
            timeout,
            _request: request,
        })
    }

    /// Sends the event; returns the ack id when an ack was asked for.
    fn send(
        self,
        event: &str,
        args: Vec<Value>,
        ack: Option<AckSlot>,
    ) -> Result<Option<u64>, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::Reserved(event.to_owned()));
        }
        let s = &self.socket;
        if !s.connected() {
            return Err(EmitError::Closed);
        }
        s.notify_outgoing(event, &args);
        let mut data = Vec::with_capacity(args.len() + 2);
        data.push(Value::String(event.to_owned()));
        data.extend(args);
        let mut packet =
            Packet::event(s.ns.nsp.clone(), Value::Array(data)).with_attachments(self.attachments);
        if let Some(slot) = ack {
            let id = s.ns.next_ack_id();
            packet.id = Some(id);
            s.register_ack(id, slot);
        } else if !self.volatile && s.ns.recovery {
            // As Node: through the adapter, to the socket's own room, which gives it an
            // offset and keeps it so that a client that drops can get it back. A full
            // queue closes the socket (slow-consumer policy), which is what is reported.
            s.ns.adapter
                .broadcast(packet, BroadcastOptions::socket(s.id))?;
            return if s.conn.is_open() {
                Ok(None)
            } else {
                Err(EmitError::Closed)
            };
        }
        if self.volatile && !s.conn.is_writable() {
            if let Some(id) = packet.id {
                s.forget_ack(id);
            }
            return Ok(None);
        }
        if let Err(e) = s.send_packet(&packet) {
            if let Some(id) = packet.id {
                s.forget_ack(id);
            }
            return Err(e);
        }
        Ok(packet.id)
    }
}

#[cfg(test)]
mod tests {
    use super::{Handshake, Socket};
    use serde_json::json;

    #[test]
    fn a_socket_stays_small() {
        // Held for every connection's life: the handshake points at the session's request
        // head and boxes its auth payload.
        assert!(std::mem::size_of::<Handshake>() <= 32);
        assert!(std::mem::size_of::<Socket>() <= 280);
    }

    #[test]
    fn a_handshake_without_auth_reads_as_an_empty_object() {
        let none = Handshake::new(
            json!({}),
            http::HeaderMap::new(),
            "/x?a=1",
            None,
            std::time::UNIX_EPOCH,
        );
        assert_eq!(*none.auth(), json!({}));
        assert!(none.auth.is_none(), "not stored");
        assert_eq!(none.query("a").as_deref(), Some("1"));
        let some = Handshake::new(
            json!({"token": "t"}),
            http::HeaderMap::new(),
            "/",
            None,
            std::time::UNIX_EPOCH,
        );
        assert_eq!(some.auth()["token"], "t");
    }
}
