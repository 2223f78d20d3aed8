//! A socket: one namespace on a manager's connection.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use iolite::parser::{Namespace, PacketType, RESERVED_EVENTS};
use iolite_engine::Transport;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::{Instant, Sleep};

use crate::codec;
use crate::error::{AckError, ConnectError, DisconnectReason, EmitError};
use crate::manager::{Inner, Manager, NsState};
use crate::payload::Payload;

type Handler = Arc<dyn Fn(Payload, Option<AckSender>) + Send + Sync>;
type AnyHandler = Arc<dyn Fn(Event) + Send + Sync>;
type LifecycleHandler = Arc<dyn Fn(&Lifecycle) + Send + Sync>;

/// Lifecycle events kept for [`Socket::next_lifecycle`]; older ones are dropped past it.
const LIFECYCLE_QUEUE: usize = 256;

/// An event from the server.
#[derive(Debug)]
pub struct Event {
    /// The event name (a numeric name is given as its JSON text).
    pub name: String,
    /// The arguments.
    pub args: Payload,
    /// Set when the server asked for an acknowledgement: answer with [`AckSender::send`].
    pub ack: Option<AckSender>,
    /// The connection state recovery offset the server appended to the arguments (taken
    /// out of [`Event::args`]). Set only while the server does recovery (its CONNECT
    /// answer had a `pid`), for events without an ack id whose last argument is a string,
    /// which is how socket.io-client recognizes it.
    pub offset: Option<String>,
}

impl Event {
    /// Answers the server's ack request, if it made one; `Ok(false)` if it did not.
    pub fn ack<T: Serialize + ?Sized>(&mut self, args: &T) -> Result<bool, EmitError> {
        match self.ack.take() {
            Some(a) => a.send(args).map(|()| true),
            None => Ok(false),
        }
    }
}

/// What happened to a socket's connection, in order: see [`Socket::next_lifecycle`] and
/// [`Socket::on_lifecycle`].
#[derive(Clone, Debug, PartialEq)]
pub enum Lifecycle {
    /// Connected to the namespace (socket.io-client's `connect`); `recovered` when the
    /// server restored the session (connection state recovery) and sent what was missed.
    Connect {
        /// [`Socket::recovered`].
        recovered: bool,
    },
    /// Disconnected (`disconnect`). Unless the reason is final
    /// ([`DisconnectReason::will_reconnect`] is false) the manager reconnects.
    Disconnect(DisconnectReason),
    /// A connection attempt failed (`connect_error`).
    ConnectError(ConnectError),
}

/// Answers one ack request from the server. Consumed by [`AckSender::send`], so an ack is
/// sent at most once.
pub struct AckSender {
    inner: Arc<Inner>,
    shared: Arc<SocketShared>,
    id: u64,
}

impl std::fmt::Debug for AckSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSender")
            .field("nsp", &self.shared.nsp)
            .field("id", &self.id)
            .finish()
    }
}

impl AckSender {
    pub(crate) fn new(inner: Arc<Inner>, shared: Arc<SocketShared>, id: u64) -> Self {
        Self { inner, shared, id }
    }

    /// The ack id the server chose.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends the answer. `args` as for [`Socket::emit`]: a JSON array gives its items as
    /// arguments, `()` none, anything else one argument. Fails with
    /// [`EmitError::Closed`] if the socket is no longer connected (the server forgot the
    /// request then).
    pub fn send<T: Serialize + ?Sized>(self, args: &T) -> Result<(), EmitError> {
        let frames = codec::encode_args(
            self.inner.cfg.parser,
            PacketType::Ack,
            &self.shared.nsp,
            Some(self.id),
            None,
            args,
        )?;
        self.inner.send_ack(&self.shared.nsp, frames)
    }
}

/// The answer to [`Socket::emit_with_ack`]: resolves to the server's ack arguments, or
/// [`AckError::Timeout`] / [`AckError::Disconnected`].
///
/// The emit is already queued when this is returned; awaiting only waits for the answer.
/// Dropping it forgets the answer (the emit still goes out).
#[must_use = "the ack answer is lost if the future is dropped"]
pub struct AckFuture {
    rx: oneshot::Receiver<Result<Payload, AckError>>,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set until the future completes.
    pending: Option<(Arc<Inner>, Namespace, u64)>,
}

impl std::fmt::Debug for AckFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckFuture")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Future for AckFuture {
    type Output = Result<Payload, AckError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(r) = Pin::new(&mut self.rx).poll(cx) {
            self.pending = None;
            return Poll::Ready(r.unwrap_or(Err(AckError::Disconnected)));
        }
        if let Some(deadline) = self.deadline {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_ready() {
                if let Some((inner, nsp, id)) = self.pending.take() {
                    inner.cancel_ack(&nsp, id, true);
                }
                return Poll::Ready(Err(AckError::Timeout));
            }
        }
        Poll::Pending
    }
}

impl Drop for AckFuture {
    fn drop(&mut self) {
        if let Some((inner, nsp, id)) = self.pending.take() {
            inner.cancel_ack(&nsp, id, false);
        }
    }
}

/// What the handles of one namespace share with the driver.
pub(crate) struct SocketShared {
    pub(crate) nsp: Namespace,
    ids: AtomicU64,
    handlers: Mutex<HashMap<String, Handler>>,
    any: Mutex<Option<AnyHandler>>,
    on_lifecycle: Mutex<Vec<LifecycleHandler>>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    lifecycle: Mutex<VecDeque<Lifecycle>>,
    lifecycle_ready: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SocketShared {
    fn new(nsp: Namespace) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Self {
            nsp,
            ids: AtomicU64::new(0),
            handlers: Mutex::new(HashMap::new()),
            any: Mutex::new(None),
            on_lifecycle: Mutex::new(Vec::new()),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            lifecycle: Mutex::new(VecDeque::new()),
            lifecycle_ready: Notify::new(),
        }
    }

    /// Delivers an event: to its handler, else the catch-all, else the event queue.
    pub(crate) fn dispatch(&self, event: Event) {
        let handler = lock(&self.handlers).get(&event.name).cloned();
        if let Some(h) = handler {
            let Event {
                name, args, ack, ..
            } = event;
            if catch_unwind(AssertUnwindSafe(|| h(args, ack))).is_err() {
                tracing::error!(event = %name, "event handler panicked");
            }
            return;
        }
        let any = lock(&self.any).clone();
        if let Some(h) = any {
            if catch_unwind(AssertUnwindSafe(|| h(event))).is_err() {
                tracing::error!("catch-all handler panicked");
            }
            return;
        }
        let _ = self.events_tx.send(event);
    }

    /// Queues a lifecycle event for [`Socket::next_lifecycle`]. Called under the
    /// manager's lock, so the queue has the order in which things happened.
    pub(crate) fn record(&self, l: &Lifecycle) {
        let mut q = lock(&self.lifecycle);
        if q.len() >= LIFECYCLE_QUEUE {
            q.pop_front();
        }
        q.push_back(l.clone());
    }

    /// Wakes [`Socket::next_lifecycle`] and runs the lifecycle handlers (outside the
    /// manager's lock).
    pub(crate) fn notify(&self, l: &Lifecycle) {
        self.lifecycle_ready.notify_one();
        let handlers = lock(&self.on_lifecycle).clone();
        for h in handlers {
            if catch_unwind(AssertUnwindSafe(|| h(l))).is_err() {
                tracing::error!("lifecycle handler panicked");
            }
        }
    }
}

fn valid_namespace(nsp: &str) -> Result<Namespace, ConnectError> {
    let name = if nsp.starts_with('/') {
        nsp.to_owned()
    } else {
        format!("/{nsp}")
    };
    Namespace::new(&name).map_err(|_| ConnectError::InvalidNamespace(nsp.to_owned()))
}

/// Sets up a socket before it connects: auth and handlers, so that no event is missed.
/// From [`Manager::socket`].
#[must_use = "a socket builder does nothing until opened or connected"]
pub struct SocketBuilder {
    manager: Manager,
    nsp: String,
    auth: Option<Value>,
    handlers: Vec<(String, Handler)>,
    any: Option<AnyHandler>,
    on_lifecycle: Vec<LifecycleHandler>,
}

impl std::fmt::Debug for SocketBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketBuilder")
            .field("nsp", &self.nsp)
            .finish_non_exhaustive()
    }
}

impl SocketBuilder {
    pub(crate) fn new(manager: Manager, nsp: &str) -> Self {
        Self {
            manager,
            nsp: nsp.to_owned(),
            auth: None,
            handlers: Vec::new(),
            any: None,
            on_lifecycle: Vec::new(),
        }
    }

    /// The `auth` payload of the CONNECT packet (socket.io-client's `auth` option): a JSON
    /// object the server reads as `socket.handshake.auth`.
    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    /// A handler for event `event`; see [`Socket::on`].
    pub fn on<F>(mut self, event: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Payload, Option<AckSender>) + Send + Sync + 'static,
    {
        self.handlers.push((event.into(), Arc::new(handler)));
        self
    }

    /// The catch-all handler; see [`Socket::on_any`].
    pub fn on_any<F>(mut self, handler: F) -> Self
    where
        F: Fn(Event) + Send + Sync + 'static,
    {
        self.any = Some(Arc::new(handler));
        self
    }

    /// A lifecycle handler; see [`Socket::on_lifecycle`].
    pub fn on_lifecycle<F>(mut self, handler: F) -> Self
    where
        F: Fn(&Lifecycle) + Send + Sync + 'static,
    {
        self.on_lifecycle.push(Arc::new(handler));
        self
    }

    fn register(self) -> Result<Socket, ConnectError> {
        let nsp = valid_namespace(&self.nsp)?;
        let inner = self.manager.client.inner.clone();
        let shared = {
            let mut st = inner.lock();
            let ns = st
                .nsps
                .entry(nsp.clone())
                .or_insert_with(|| NsState::new(Arc::new(SocketShared::new(nsp.clone()))));
            if self.auth.is_some() {
                ns.auth = self.auth;
            }
            ns.shared.clone()
        };
        {
            let mut h = lock(&shared.handlers);
            for (name, f) in self.handlers {
                h.insert(name, f);
            }
        }
        if let Some(a) = self.any {
            *lock(&shared.any) = Some(a);
        }
        lock(&shared.on_lifecycle).extend(self.on_lifecycle);
        Ok(Socket {
            manager: self.manager,
            shared,
        })
    }

    /// Starts connecting and returns at once (socket.io-client's `io()`); follow the
    /// outcome with [`Socket::next_lifecycle`]. Fails only for an invalid namespace.
    pub fn open(self) -> Result<Socket, ConnectError> {
        let socket = self.register()?;
        socket.connect();
        Ok(socket)
    }

    /// Connects and waits until the server accepts the namespace. Fails if the server
    /// refuses it ([`ConnectError::Refused`]), if reconnection gives up, or, with
    /// reconnection off, if the connection fails; the socket is closed then. While
    /// reconnection is on, transport errors are retried (each is still reported to
    /// [`Socket::next_lifecycle`]).
    pub async fn connect(self) -> Result<Socket, ConnectError> {
        let socket = self.register()?;
        let (tx, rx) = oneshot::channel();
        socket.inner().activate(&socket.shared.nsp, Some(tx));
        match rx.await {
            Ok(Ok(())) => Ok(socket),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ConnectError::Closed),
        }
    }
}

/// A Socket.IO socket: one namespace over its [`Manager`]'s connection
/// (socket.io-client's `Socket`). Cheap to clone; clones are the same socket.
///
/// Incoming events go to the handler registered for their name ([`Socket::on`]), else
/// to the catch-all ([`Socket::on_any`]), else to a queue read with
/// [`Socket::next_event`]. Handlers run on the manager's task: keep them short and never
/// block in them (hand work to another task).
#[derive(Clone)]
pub struct Socket {
    manager: Manager,
    shared: Arc<SocketShared>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("nsp", &self.shared.nsp)
            .field("id", &self.id())
            .field("connected", &self.connected())
            .finish()
    }
}

impl Socket {
    fn inner(&self) -> &Arc<Inner> {
        &self.manager.client.inner
    }

    fn with_state<R>(&self, f: impl FnOnce(&NsState) -> R) -> Option<R> {
        let st = self.inner().lock();
        st.nsps.get(self.shared.nsp.as_str()).map(f)
    }

    /// The namespace, e.g. `/admin`.
    pub fn namespace(&self) -> &str {
        self.shared.nsp.as_str()
    }

    /// The manager (connection) this socket belongs to.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The socket id the server gave, while connected.
    pub fn id(&self) -> Option<String> {
        self.with_state(|n| n.id.clone()).flatten()
    }

    /// Whether the socket is connected to its namespace.
    pub fn connected(&self) -> bool {
        self.with_state(|n| n.connected).unwrap_or(false)
    }

    /// Whether the socket is connected or trying to (socket.io-client's `active`): false
    /// once disconnected for good.
    pub fn active(&self) -> bool {
        self.with_state(|n| n.active).unwrap_or(false)
    }

    /// Whether the last connection restored the previous session (connection state
    /// recovery): the server kept the socket's id, rooms and data, and sent the events
    /// emitted while it was away.
    pub fn recovered(&self) -> bool {
        self.with_state(|n| n.recovered).unwrap_or(false)
    }

    /// The transport in use, `None` while not connected.
    pub fn transport(&self) -> Option<Transport> {
        self.manager.transport()
    }

    /// Connects again after a disconnection (socket.io-client's `socket.connect()`).
    /// Does nothing if the socket is connected or connecting.
    pub fn connect(&self) {
        self.inner().activate(&self.shared.nsp, None);
    }

    /// Disconnects (socket.io-client's `socket.disconnect()`): a DISCONNECT packet goes
    /// to the server, the socket's lifecycle gets
    /// [`DisconnectReason::ClientDisconnect`], and there is no reconnection. The
    /// connection closes when no socket of the manager is left.
    pub fn disconnect(&self) {
        self.inner().disconnect(&self.shared.nsp);
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        event: &str,
        id: Option<u64>,
        args: &T,
    ) -> Result<Vec<codec::Frame>, EmitError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitError::Reserved(event.to_owned()));
        }
        Ok(codec::encode_args(
            self.inner().cfg.parser,
            PacketType::Event,
            &self.shared.nsp,
            id,
            Some(event),
            args,
        )?)
    }

    /// Emits `event`. `args` is serialized with serde: a JSON array (a tuple, a `Vec`...)
    /// gives its items as the arguments, `()` none, and anything else one argument (wrap
    /// a single array as `(vec,)`). [`crate::Binary`] values, at any depth, are sent as
    /// binary attachments.
    ///
    /// While the socket is reconnecting the packet is buffered and sent once it is
    /// connected again. Fails with [`EmitError::Closed`] once the socket is closed for
    /// good and [`EmitError::Full`] when the send queue is over its limit.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let frames = self.encode(event, None, args)?;
        self.inner().send_frames(&self.shared.nsp, frames, None)
    }

    /// Emits `event` asking for an acknowledgement, with the manager's default
    /// [`crate::ManagerBuilder::ack_timeout`]. The emit fails or is queued right away;
    /// the returned future resolves to the server's answer.
    ///
    /// ```no_run
    /// # async fn f(socket: iolite_client::Socket) -> Result<(), Box<dyn std::error::Error>> {
    /// let answer = socket.emit_with_ack("echo", &("hi", 1))?.await?;
    /// let (s, n): (String, u32) = answer.args()?;
    /// # Ok(()) }
    /// ```
    pub fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<AckFuture, EmitError> {
        self.emit_ack_inner(event, args, self.inner().cfg.ack_timeout)
    }

    /// [`Socket::emit_with_ack`] with a timeout (socket.io-client's
    /// `socket.timeout(ms).emit(...)`): past it the future gives [`AckError::Timeout`],
    /// and an emit still waiting in the send buffer is dropped.
    pub fn emit_with_ack_timeout<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> Result<AckFuture, EmitError> {
        self.emit_ack_inner(event, args, Some(timeout))
    }

    fn emit_ack_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
        timeout: Option<Duration>,
    ) -> Result<AckFuture, EmitError> {
        let id = self.shared.ids.fetch_add(1, Ordering::Relaxed);
        let frames = self.encode(event, Some(id), args)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let (tx, rx) = oneshot::channel();
        self.inner()
            .send_frames(&self.shared.nsp, frames, Some((id, tx)))?;
        Ok(AckFuture {
            rx,
            deadline,
            sleep: None,
            pending: Some((self.inner().clone(), self.shared.nsp.clone(), id)),
        })
    }

    /// Handles event `event` (replacing a previous handler of it): `handler` gets the
    /// arguments and, if the server asked for one, the [`AckSender`] to answer with.
    /// Runs on the manager's task: do not block in it.
    pub fn on<F>(&self, event: impl Into<String>, handler: F)
    where
        F: Fn(Payload, Option<AckSender>) + Send + Sync + 'static,
    {
        lock(&self.shared.handlers).insert(event.into(), Arc::new(handler));
    }

    /// Removes the handler of `event`: its events go to the catch-all or the queue again.
    pub fn off(&self, event: &str) {
        lock(&self.shared.handlers).remove(event);
    }

    /// The catch-all handler: every event without a handler of its own (replacing a
    /// previous catch-all). Events then no longer reach [`Socket::next_event`].
    pub fn on_any<F>(&self, handler: F)
    where
        F: Fn(Event) + Send + Sync + 'static,
    {
        *lock(&self.shared.any) = Some(Arc::new(handler));
    }

    /// Removes the catch-all handler.
    pub fn off_any(&self) {
        *lock(&self.shared.any) = None;
    }

    /// Adds a handler of lifecycle events (connect, disconnect, connect_error).
    pub fn on_lifecycle<F>(&self, handler: F)
    where
        F: Fn(&Lifecycle) + Send + Sync + 'static,
    {
        lock(&self.shared.on_lifecycle).push(Arc::new(handler));
    }

    /// The next event that no handler took, in the order the server sent them. Waits for
    /// one; `None` only if the socket is gone. Events queue up (unbounded) until read:
    /// read them, or register handlers.
    pub async fn next_event(&self) -> Option<Event> {
        self.shared.events_rx.lock().await.recv().await
    }

    /// The next queued event, without waiting.
    pub fn try_next_event(&self) -> Option<Event> {
        self.shared.events_rx.try_lock().ok()?.try_recv().ok()
    }

    /// The next lifecycle event (connect, disconnect, connect_error), in order. The last
    /// 256 are kept until read.
    pub async fn next_lifecycle(&self) -> Lifecycle {
        loop {
            if let Some(l) = lock(&self.shared.lifecycle).pop_front() {
                return l;
            }
            self.shared.lifecycle_ready.notified().await;
        }
    }

    /// The next lifecycle event, without waiting.
    pub fn try_next_lifecycle(&self) -> Option<Lifecycle> {
        lock(&self.shared.lifecycle).pop_front()
    }
}
