//! One Engine.IO session: its transport, its outgoing queue and its heartbeat.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use iolite_ws::sweep;
use iolite_ws::SlowConsumer;
use iolite_ws_proto::{CloseCode, Message, PreparedMessage, Utf8Bytes};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::packet::{Data, Packet};
use crate::payload::PayloadEncoder;
use crate::query::Transport;
use crate::server::head::RequestHead;
use crate::server::CloseReason;
use crate::sid::Sid;

/// Why a message could not be queued for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is closing or closed.
    #[error("session closed")]
    Closed,
    /// The session's send queue is over its budget (a slow client). With
    /// [`SlowConsumer::Close`] the session is being closed as well.
    #[error("send queue full")]
    QueueFull,
}

/// A message encoded once and sent to many sessions: the same bytes go into every
/// polling queue and the same WebSocket frame to every WebSocket.
pub struct SharedMessage {
    /// The WebSocket form: text with the packet type digit (`4...`), or raw binary.
    data: Data,
    prepared: PreparedMessage,
}

impl SharedMessage {
    /// A `message` packet whose WebSocket text is `text` (it must start with `4`, the
    /// message type: e.g. `42["event"]` for a Socket.IO event).
    pub fn ws_text(text: Utf8Bytes) -> Self {
        Self {
            prepared: PreparedMessage::text(text.clone()),
            data: Data::Text(text),
        }
    }

    /// A binary `message` packet.
    pub fn binary(data: Bytes) -> Self {
        Self {
            prepared: PreparedMessage::binary(data.clone()),
            data: Data::Binary(data),
        }
    }

    /// Bytes of the message as it goes out on a WebSocket.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the message is empty (never, for a valid packet).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What one item in an outgoing batch is.
pub(crate) enum Out<'a> {
    /// A whole packet as WebSocket text, type digit included (`42[...]`, `2`, `6`).
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A broadcast.
    Shared(&'a SharedMessage),
}

impl Out<'_> {
    fn len(&self) -> usize {
        match self {
            Out::Text(t) => t.len(),
            Out::Binary(b) => b.len(),
            Out::Shared(s) => s.len(),
        }
    }

    fn into_queued(self) -> Data {
        match self {
            Out::Text(t) => Data::Text(t),
            Out::Binary(b) => Data::Binary(b),
            Out::Shared(s) => s.data.clone(),
        }
    }
}

pub(crate) enum Conn {
    /// Boxed: a session on WebSocket (most of them) then holds no polling queue.
    Polling(Box<PollQueue>),
    /// The sender is the session's [`Socket::ws`].
    WebSocket,
}

impl Conn {
    pub(crate) fn polling() -> Self {
        Conn::Polling(Box::default())
    }
}

/// Packets for the next polling GET, in WebSocket form (text with its type digit).
#[derive(Default)]
pub(crate) struct PollQueue {
    items: VecDeque<Data>,
    bytes: usize,
}

/// What only a session that started on polling needs: its GETs' and its heartbeat task's
/// wake-ups.
#[derive(Default)]
pub(crate) struct PollingWakes {
    pub(crate) get: Notify,
    pub(crate) driver: DriverWake,
    pub(crate) driver_woken: AtomicBool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Open,
    /// A polling session closed by the server, waiting for a GET to take its last packets.
    Closing(sweep::Tick),
    Closed,
}

pub(crate) struct State {
    pub(crate) conn: Conn,
    pub(crate) get_pending: bool,
    pub(crate) post_pending: bool,
    pub(crate) upgrading: bool,
    pub(crate) phase: Phase,
    /// When the unanswered ping went out (or was refreshed); `0` when none is out. The
    /// session's times are 4-byte sweep ticks (milliseconds), not 16-byte `Instant`s.
    ping_sent: sweep::Tick,
    refreshed: bool,
    next_ping: sweep::Tick,
    /// The handler's own deadline ([`Socket::set_deadline`]), `0` for none.
    deadline: sweep::Tick,
}

/// What a transport driver does next.
pub(crate) enum Tick {
    Wait(sweep::Tick),
    Stop,
}

/// The engine behind a session, type-erased so that sessions need not name the handler.
pub(crate) trait Core<D>: Send + Sync + 'static {
    fn ping_interval(&self) -> Duration;
    fn ping_timeout(&self) -> Duration;
    fn close_timeout(&self) -> Duration;
    fn max_queued_bytes(&self) -> usize;
    fn slow_consumer(&self) -> SlowConsumer;
    fn queue_overflow(&self);
    fn on_message(&self, socket: &Arc<Socket<D>>, data: Data);
    fn on_deadline(&self, socket: &Arc<Socket<D>>);
    fn on_close(&self, socket: &Arc<Socket<D>>, reason: CloseReason);
    fn remove(&self, sid: &Sid);
}

/// Tells the one task that drives a session (its heartbeat, and on WebSocket its reads) to
/// look at the session's state again: a waker and a flag, so the task's state holds no
/// `Notified` future beside it (a `Notify` and that future took 96 bytes per session).
/// The flag is its owner's, kept beside its other flags (inside this struct it cost 8
/// bytes of padding in every session).
#[derive(Default)]
pub(crate) struct DriverWake {
    waker: AtomicWaker,
}

impl DriverWake {
    fn wake(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// `Ready` once after each [`DriverWake::wake`] with the same `flag`; `Pending`
    /// registers the task.
    pub(crate) fn poll(&self, flag: &AtomicBool, cx: &mut Context<'_>) -> Poll<()> {
        if flag.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake between the first look and the registration found no waker to wake.
        if flag.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// An Engine.IO session (Node's `engine.io` `Socket`): one client, whichever transport it
/// is on. Cheap to share (`Arc`); sends never wait on the network.
pub struct Socket<D> {
    sid: Sid,
    /// Shared with whoever keeps it for the session's life (each Socket.IO socket's
    /// handshake), so it is held once.
    request: Arc<RequestHead>,
    state: Mutex<State>,
    awaiting_pong: AtomicBool,
    /// `phase == Open`, kept beside the state so the per-message check takes no lock.
    open: AtomicBool,
    /// [`Socket::ws_wake`]'s flag.
    pub(crate) ws_woken: AtomicBool,
    /// `Some` for a session opened on polling.
    pub(crate) polling: Option<Box<PollingWakes>>,
    /// Wakes the task reading the session's WebSocket. Not shared with the polling one: in
    /// an upgrade both run for a moment, and one waker slot would go to whichever
    /// registered last.
    pub(crate) ws_wake: DriverWake,
    /// The session's WebSocket once it is on one (`Conn::WebSocket`). Set once, at creation
    /// or when an upgrade completes (under the state lock), and never taken, so a
    /// broadcast can prefetch its queue without the lock ([`Socket::prefetch_queue`]).
    /// Sends still go under the state lock, which orders them with the session's close.
    ws: OnceLock<iolite_ws::Sender>,
    core: Arc<dyn Core<D>>,
    data: D,
}

impl<D> std::fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("sid", &self.sid).finish()
    }
}

const PING: Utf8Bytes = Utf8Bytes::from_static("2");
const NOOP: Utf8Bytes = Utf8Bytes::from_static("6");
const CLOSE: Utf8Bytes = Utf8Bytes::from_static("1");

impl<D: Send + Sync + 'static> Socket<D> {
    /// A session on `ws`, or on polling when `None`.
    pub(crate) fn new(
        sid: Sid,
        request: RequestHead,
        ws: Option<iolite_ws::Sender>,
        core: Arc<dyn Core<D>>,
        data: D,
    ) -> Self {
        let next_ping = sweep::after(core.ping_interval());
        let polling = ws.is_none().then(Box::default);
        let conn = if ws.is_some() {
            Conn::WebSocket
        } else {
            Conn::polling()
        };
        Self {
            sid,
            request: Arc::new(request),
            state: Mutex::new(State {
                conn,
                get_pending: false,
                post_pending: false,
                upgrading: false,
                phase: Phase::Open,
                ping_sent: 0,
                refreshed: false,
                next_ping,
                deadline: 0,
            }),
            awaiting_pong: AtomicBool::new(false),
            open: AtomicBool::new(true),
            ws_woken: AtomicBool::new(false),
            polling,
            ws_wake: DriverWake::default(),
            ws: ws.map(OnceLock::from).unwrap_or_default(),
            core,
            data,
        }
    }

    /// The session id.
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The head of the request that opened the session (method, URI with the query,
    /// headers, and the extensions, where a server puts the peer address), as `http` has
    /// it. Built on first use; [`Socket::head`] has the same without building it.
    pub fn request(&self) -> &http::request::Parts {
        self.request.parts()
    }

    /// The head of the request that opened the session, as the session keeps it.
    pub fn head(&self) -> &RequestHead {
        &self.request
    }

    /// [`Socket::head`], shared: for keeping it as long as the session without a copy.
    pub fn shared_request(&self) -> Arc<RequestHead> {
        self.request.clone()
    }

    /// The application's per-session data.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The transport the session is on now.
    pub fn transport(&self) -> Transport {
        match self.lock().conn {
            Conn::Polling(_) => Transport::Polling,
            Conn::WebSocket => Transport::WebSocket,
        }
    }

    /// Whether a message sent now goes out at once: a polling GET is waiting, or the
    /// WebSocket has nothing queued (Node's `transport.writable`, which volatile emits
    /// check).
    pub fn is_writable(&self) -> bool {
        let st = self.lock();
        st.phase == Phase::Open
            && match &st.conn {
                Conn::Polling(q) => st.get_pending && q.items.is_empty(),
                Conn::WebSocket => self.ws.get().is_some_and(|tx| tx.buffered_bytes() == 0),
            }
    }

    /// Starts loading the session state a send takes the lock of into the CPU's cache.
    /// The first of three steps for a loop that sends to many sessions (a broadcast): it
    /// calls this some sessions ahead of the one it sends to, then
    /// [`Socket::prefetch_transport`] closer, then [`Socket::prefetch_queue`] closer still;
    /// each step reads what the one before loaded. See [`iolite_ws::prefetch`].
    #[inline]
    pub fn prefetch(&self) {
        iolite_ws::prefetch::write_range(&self.state, std::mem::size_of::<Mutex<State>>());
        iolite_ws::prefetch::write(&self.ws);
    }

    /// The second step (see [`Socket::prefetch`]): the WebSocket connection's queue state.
    #[inline]
    pub fn prefetch_transport(&self) {
        if let Some(tx) = self.ws.get() {
            tx.prefetch();
        }
    }

    /// The third step (see [`Socket::prefetch`]): the slot the next message will take in
    /// the WebSocket connection's queue.
    #[inline]
    pub fn prefetch_queue(&self) {
        if let Some(tx) = self.ws.get() {
            tx.prefetch_queue();
        }
    }

    /// Whether the session is open (sends can succeed).
    pub fn is_open(&self) -> bool {
        // Read on every incoming message: a flag instead of the state lock.
        self.open.load(Ordering::Acquire)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug here; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a text message (`4` + `text`).
    pub fn send_text(self: &Arc<Self>, text: &str) -> Result<(), SendError> {
        let mut s = String::with_capacity(1 + text.len());
        s.push('4');
        s.push_str(text);
        self.send_ws_text(Utf8Bytes::from(s))
    }

    /// Sends a whole packet given in its WebSocket text form, type digit included (for a
    /// message: `4` + data). The caller encodes it once into a shared buffer.
    pub fn send_ws_text(self: &Arc<Self>, text: Utf8Bytes) -> Result<(), SendError> {
        self.push([Out::Text(text)])
    }

    /// Sends a binary message.
    pub fn send_binary(self: &Arc<Self>, data: Bytes) -> Result<(), SendError> {
        self.push([Out::Binary(data)])
    }

    /// Sends a text packet followed by binary messages with nothing from other senders in
    /// between (a Socket.IO packet and its attachments).
    pub fn send_with_attachments(
        self: &Arc<Self>,
        text: Utf8Bytes,
        attachments: &[Bytes],
    ) -> Result<(), SendError> {
        self.push(
            std::iter::once(Out::Text(text))
                .chain(attachments.iter().map(|b| Out::Binary(b.clone()))),
        )
    }

    /// Sends messages encoded once for many sessions, in order, with nothing from other
    /// senders in between.
    pub fn send_shared(self: &Arc<Self>, messages: &[SharedMessage]) -> Result<(), SendError> {
        self.push(messages.iter().map(Out::Shared))
    }

    pub(crate) fn push<'a>(
        self: &Arc<Self>,
        items: impl IntoIterator<Item = Out<'a>>,
    ) -> Result<(), SendError> {
        let mut st = self.lock();
        if st.phase != Phase::Open {
            return Err(SendError::Closed);
        }
        let r = self.push_locked(&mut st, items);
        drop(st);
        if r == Err(SendError::QueueFull) {
            self.core.queue_overflow();
        }
        if r == Err(SendError::QueueFull)
            && matches!(self.core.slow_consumer(), SlowConsumer::Close(_))
        {
            // A polling client that does not come back for its packets (a WebSocket's own
            // queue applies the policy itself, and the session ends with the transport).
            self.shutdown(CloseReason::TransportError, false);
        }
        r
    }

    fn push_locked<'a>(
        &self,
        st: &mut State,
        items: impl IntoIterator<Item = Out<'a>>,
    ) -> Result<(), SendError> {
        let get_pending = st.get_pending;
        match &mut st.conn {
            Conn::WebSocket => {
                let tx = self.ws.get().ok_or(SendError::Closed)?;
                for item in items {
                    let r = match item {
                        Out::Text(t) => tx.send(Message::Text(t)).map_err(ws_error),
                        Out::Binary(b) => tx.send(Message::Binary(b)).map_err(ws_error),
                        Out::Shared(s) => tx.send_prepared(&s.prepared).map_err(ws_error),
                    };
                    r?;
                }
                Ok(())
            }
            Conn::Polling(q) => {
                let was_empty = q.items.is_empty();
                let max = self.core.max_queued_bytes();
                for item in items {
                    let len = item.len();
                    if q.bytes > 0 && q.bytes + len > max {
                        return Err(SendError::QueueFull);
                    }
                    q.bytes += len;
                    q.items.push_back(item.into_queued());
                }
                if was_empty && get_pending {
                    self.wake_get();
                }
                Ok(())
            }
        }
    }

    /// Closes the session from the server side (Node's `socket.close()`, reason
    /// `forced close`): what is queued is still delivered, then the transport closes.
    pub fn close(self: &Arc<Self>) {
        self.shutdown(CloseReason::ForcedClose, true);
    }

    /// Closes the session with `reason`. `graceful`: deliver what is queued and tell the
    /// client (a polling `close` packet, a WebSocket close frame). Reports the close to
    /// the handler once, whoever calls first.
    pub(crate) fn shutdown(self: &Arc<Self>, reason: CloseReason, graceful: bool) {
        let mut st = self.lock();
        if st.phase != Phase::Open {
            return;
        }
        let get_pending = st.get_pending;
        match &mut st.conn {
            Conn::WebSocket => {
                // 1001 tells the client the server is going away (restart, deploy), so it
                // reconnects rather than treating the close as a refusal.
                let code = if reason == CloseReason::ServerShuttingDown {
                    CloseCode::GOING_AWAY
                } else {
                    CloseCode::NORMAL
                };
                if let Some(tx) = self.ws.get() {
                    let _ = tx.close(code, "");
                }
                st.phase = Phase::Closed;
            }
            Conn::Polling(q) => {
                if !graceful {
                    q.items.clear();
                    q.bytes = 0;
                }
                if !graceful || q.items.is_empty() && get_pending {
                    // A failed session is gone at once (a later request gets "Session ID
                    // unknown"); a waiting GET still carries the `close` packet.
                    if get_pending {
                        q.items.push_back(Data::Text(CLOSE));
                    }
                    st.phase = Phase::Closed;
                } else {
                    // As Node: what is queued goes out first, and the `close` packet in a
                    // later GET, so the client handles those packets before the close
                    // (it dispatches Socket.IO packets a tick after reading them).
                    st.phase = Phase::Closing(sweep::after(self.core.close_timeout()));
                }
            }
        }
        self.open.store(false, Ordering::Release);
        let closed = st.phase == Phase::Closed;
        drop(st);
        if closed {
            self.core.remove(&self.sid);
        }
        self.wake_get();
        self.wake_drivers();
        self.core.on_close(self, reason);
    }

    /// Ends a `Closing` polling session (its last GET went out, or the close timeout).
    pub(crate) fn finish(self: &Arc<Self>) {
        let mut st = self.lock();
        if st.phase == Phase::Closed {
            return;
        }
        st.phase = Phase::Closed;
        drop(st);
        self.core.remove(&self.sid);
        self.wake_get();
        self.wake_drivers();
    }

    /// Handles a packet from the client, in order.
    pub(crate) fn on_packet(self: &Arc<Self>, packet: Packet) {
        if self.awaiting_pong.load(Ordering::Relaxed) && !matches!(packet, Packet::Pong(_)) {
            // Node refreshes the ping timeout once on any packet while a pong is due, so a
            // client busy sending is not cut off by a pong stuck behind its messages.
            let mut st = self.lock();
            if st.ping_sent != 0 && !st.refreshed {
                st.ping_sent = sweep::now();
                st.refreshed = true;
            }
        }
        match packet {
            Packet::Message(data) => {
                if self.is_open() {
                    self.core.on_message(self, data);
                }
            }
            Packet::Pong(_) => {
                let mut st = self.lock();
                if std::mem::take(&mut st.ping_sent) != 0 {
                    st.next_ping = sweep::after(self.core.ping_interval());
                    self.awaiting_pong.store(false, Ordering::Relaxed);
                }
            }
            // v4: only the server pings.
            Packet::Ping(_) => self.shutdown(CloseReason::TransportError, false),
            Packet::Close => self.shutdown(CloseReason::TransportClose, false),
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn wake_drivers(&self) {
        if let Some(p) = &self.polling {
            p.driver.wake(&p.driver_woken);
        }
        self.ws_wake.wake(&self.ws_woken);
    }

    fn wake_get(&self) {
        if let Some(p) = &self.polling {
            p.get.notify_one();
        }
    }

    /// Heartbeat and close timers. `ws_driver`: called by the WebSocket task, which owns
    /// the heartbeat once the session is on WebSocket (the polling timer task then stops).
    pub(crate) fn tick(self: &Arc<Self>, ws_driver: bool) -> Tick {
        let now = sweep::now();
        let due = {
            let mut st = self.lock();
            let due = st.deadline != 0
                && sweep::passed(st.deadline, now)
                && st.phase == Phase::Open
                && (ws_driver || !matches!(st.conn, Conn::WebSocket));
            if due {
                st.deadline = 0;
            }
            due
        };
        if due {
            // Outside the lock: the handler may close the session or set a new deadline.
            self.core.on_deadline(self);
        }
        match self.heartbeat(ws_driver, now) {
            Tick::Wait(t) => Tick::Wait(sweep::earliest(t, self.lock().deadline)),
            Tick::Stop => Tick::Stop,
        }
    }

    /// The shortest interval of this session's heartbeat and close.
    pub(crate) fn finest_interval(&self) -> Duration {
        let core = &self.core;
        core.ping_interval()
            .min(core.ping_timeout())
            .min(core.close_timeout())
    }

    /// Sets (or with `None` clears) a deadline of the handler's own: when it passes,
    /// [`Handler::on_deadline`](crate::server::Handler::on_deadline) runs on the session's
    /// heartbeat task. One per session; a new one replaces the last. It acts up to one sweep
    /// late (see [`iolite_ws::sweep`]), and a deadline more than 12 days ahead acts after 12.
    pub fn set_deadline(&self, at: Option<Instant>) {
        let at = match at {
            Some(at) => {
                sweep::finer(at.saturating_duration_since(Instant::now()));
                sweep::at(at.into_std())
            }
            None => 0,
        };
        let earlier = {
            let mut st = self.lock();
            let earlier = at != 0 && (st.deadline == 0 || !sweep::passed(st.deadline, at));
            st.deadline = at;
            earlier
        };
        if earlier {
            // The driver may be asleep until a later heartbeat.
            self.wake_drivers();
        }
    }

    fn heartbeat(self: &Arc<Self>, ws_driver: bool, now: sweep::Tick) -> Tick {
        let mut st = self.lock();
        match st.phase {
            Phase::Closed => return Tick::Stop,
            Phase::Closing(deadline) => {
                if sweep::passed(deadline, now) {
                    drop(st);
                    self.finish();
                    return Tick::Stop;
                }
                return Tick::Wait(deadline);
            }
            Phase::Open => {}
        }
        if !ws_driver && matches!(st.conn, Conn::WebSocket) {
            return Tick::Stop;
        }
        if st.ping_sent != 0 {
            let deadline = sweep::later(st.ping_sent, self.core.ping_timeout());
            if sweep::passed(deadline, now) {
                drop(st);
                self.shutdown(CloseReason::PingTimeout, false);
                return Tick::Stop;
            }
            return Tick::Wait(deadline);
        }
        if sweep::passed(st.next_ping, now) {
            st.ping_sent = now;
            st.refreshed = false;
            self.awaiting_pong.store(true, Ordering::Relaxed);
            // A full queue fails the send; the pong will not come and the timeout closes it.
            let _ = self.push_locked(&mut st, [Out::Text(PING)]);
            return Tick::Wait(sweep::later(now, self.core.ping_timeout()));
        }
        Tick::Wait(st.next_ping)
    }

    /// A `noop` for a GET waiting during an upgrade, so the client can pause polling.
    pub(crate) fn release_get(&self) {
        let mut st = self.lock();
        let get_pending = st.get_pending;
        if let Conn::Polling(q) = &mut st.conn {
            if get_pending && q.items.is_empty() {
                q.items.push_back(Data::Text(NOOP));
                self.wake_get();
            }
        }
    }

    /// Moves the session onto the WebSocket: what was queued for polling goes first.
    pub(crate) fn complete_upgrade(&self, tx: iolite_ws::Sender) -> bool {
        let mut st = self.lock();
        st.upgrading = false;
        if st.phase != Phase::Open {
            return false;
        }
        if let Conn::Polling(q) = &mut st.conn {
            for d in q.items.drain(..) {
                let _ = match d {
                    Data::Text(t) => tx.send(Message::Text(t)),
                    Data::Binary(b) => tx.send(Message::Binary(b)),
                };
            }
        }
        // Set before `conn` says WebSocket, under the lock that every reader of `conn` holds.
        let _ = self.ws.set(tx);
        st.conn = Conn::WebSocket;
        drop(st);
        self.wake_get();
        self.wake_drivers();
        true
    }
}

/// Takes everything queued for a polling GET, as a payload. `None` if nothing is
/// queued.
pub(crate) fn take_payload(st: &mut State) -> Option<Vec<u8>> {
    let Conn::Polling(q) = &mut st.conn else {
        return None;
    };
    if q.items.is_empty() {
        return None;
    }
    let mut enc = PayloadEncoder::new();
    for d in q.items.drain(..) {
        match d {
            Data::Text(t) => enc.push_ws_text(t.as_str()),
            Data::Binary(b) => enc.push_binary(&b),
        }
    }
    q.bytes = 0;
    Some(enc.finish())
}

/// The body of a GET answered with nothing to send.
pub(crate) fn noop() -> Vec<u8> {
    b"6".to_vec()
}

fn ws_error<T>(e: iolite_ws::SendError<T>) -> SendError {
    match e {
        iolite_ws::SendError::Closed(_) => SendError::Closed,
        iolite_ws::SendError::QueueFull(_) => SendError::QueueFull,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_session_stays_small() {
        // Held for every session's life: its times are 4-byte sweep ticks (the state was 88
        // bytes with `Instant`s), and its WebSocket sender is in `Socket::ws` (40 with it).
        assert!(std::mem::size_of::<super::State>() <= 32);
        assert!(std::mem::size_of::<super::Socket<()>>() <= 136);
    }
}
