//! The manager: one Engine.IO connection shared by the sockets of every namespace, and
//! the task that drives it (handshake, heartbeat, upgrade, reconnection).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iolite::parser::{self, Namespace, PacketType};
use iolite_engine::{Packet, Transport};
use iolite_ws::{SendError, Sender};
use serde_json::{Map, Value};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::{self, Decoder, Frame, Parser};
use crate::config::{Backoff, Endpoint, ManagerBuilder, Rng};
use crate::error::{AckError, ConnectError, DisconnectReason, EmitError};
use crate::http::Tls;
use crate::payload::Payload;
use crate::socket::{AckSender, Event, Lifecycle, SocketBuilder, SocketShared};
use crate::transport::{self, Handshake, Polling, TransportConfig, TransportEvent, WsTransport};

/// One connection to a Socket.IO server, multiplexing the sockets of any number of
/// namespaces (socket.io-client's `Manager`). Cheap to clone.
///
/// The connection opens when the first socket does, reconnects with backoff when it is
/// lost, and closes when no socket is left.
#[derive(Clone)]
pub struct Manager {
    pub(crate) client: Arc<Client>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.client.inner.endpoint.authority)
            .field("transport", &self.transport())
            .finish_non_exhaustive()
    }
}

/// Keeps the driver running while any handle exists.
pub(crate) struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

impl Manager {
    /// Options for a manager of the server at `url` (`http://`, `https://`, `ws://` or
    /// `wss://`; the path of the URL is ignored, its query is sent).
    pub fn builder(url: impl Into<String>) -> ManagerBuilder {
        ManagerBuilder::new(url)
    }

    /// A manager with the default options. Must be called inside a tokio runtime.
    pub fn new(url: impl Into<String>) -> Result<Self, crate::BuildError> {
        Self::builder(url).build()
    }

    pub(crate) fn start(b: ManagerBuilder, endpoint: Endpoint) -> Result<Self, crate::BuildError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| crate::BuildError::NoRuntime)?;
        let endpoint = Arc::new(endpoint);
        let tcfg = TransportConfig {
            endpoint: endpoint.clone(),
            headers: Arc::new(b.headers.clone()),
            tls: Tls {
                #[cfg(feature = "tls")]
                config: b.tls.clone(),
            },
            max_payload: b.max_payload,
            // Our own limit is checked before sending; the WebSocket queue gets room above
            // it for the control packets (pongs, acks) that are never refused.
            max_queued_bytes: b.max_queued_bytes.saturating_mul(2).saturating_add(1 << 20),
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                out: Out {
                    open: false,
                    ws: None,
                    buf: VecDeque::new(),
                    buf_bytes: 0,
                    max: b.max_queued_bytes,
                },
                nsps: HashMap::new(),
                transport: None,
                engine_id: None,
            }),
            wake: Notify::new(),
            shutdown: AtomicBool::new(false),
            endpoint,
            tcfg,
            cfg: b,
        });
        let driver = Driver {
            inner: inner.clone(),
            decoder: Decoder::new(inner.cfg.parser, inner.cfg.max_attachments),
            rng: Rng::new(),
            backoff: Backoff::new(
                inner.cfg.reconnection_delay,
                inner.cfg.reconnection_delay_max,
                inner.cfg.randomization_factor,
            ),
        };
        runtime.spawn(driver.run());
        Ok(Self {
            client: Arc::new(Client { inner }),
        })
    }

    /// A socket for namespace `nsp` (`/`, `/admin`). Calling it again for the same
    /// namespace gives the same socket (as socket.io-client's `manager.socket(nsp)`).
    pub fn socket(&self, nsp: &str) -> SocketBuilder {
        SocketBuilder::new(self.clone(), nsp)
    }

    /// The transport in use, `None` while not connected.
    pub fn transport(&self) -> Option<Transport> {
        self.client.inner.lock().transport
    }

    /// The Engine.IO session id, `None` while not connected.
    pub fn engine_id(&self) -> Option<String> {
        self.client.inner.lock().engine_id.clone()
    }

    /// Closes the connection: every socket is disconnected with
    /// [`DisconnectReason::ForcedClose`] and none reconnects (socket.io-client's
    /// `manager.disconnect()`). Sockets can be connected again with
    /// [`crate::Socket::connect`].
    pub fn close(&self) {
        let inner = &self.client.inner;
        let mut notes = Notes::default();
        {
            let mut st = inner.lock();
            for ns in st.nsps.values_mut() {
                if ns.active {
                    let was = ns.connected;
                    ns.deactivate(ConnectError::Closed);
                    if was {
                        notes.push(
                            &ns.shared,
                            Lifecycle::Disconnect(DisconnectReason::ForcedClose),
                        );
                    }
                }
            }
        }
        notes.run();
        inner.wake.notify_one();
    }
}

/// State shared by the handles and the driver.
pub(crate) struct Inner {
    pub(crate) cfg: ManagerBuilder,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) tcfg: TransportConfig,
    pub(crate) state: Mutex<State>,
    /// Wakes the driver: data to POST, a socket (de)activated, shutdown.
    pub(crate) wake: Notify,
    pub(crate) shutdown: AtomicBool,
}

pub(crate) struct State {
    pub(crate) out: Out,
    pub(crate) nsps: HashMap<Namespace, NsState>,
    pub(crate) transport: Option<Transport>,
    pub(crate) engine_id: Option<String>,
}

/// The Engine.IO write side.
pub(crate) struct Out {
    /// The engine connection is open.
    pub(crate) open: bool,
    /// On WebSocket: frames go straight to its queue.
    pub(crate) ws: Option<Sender>,
    /// On polling (and during an upgrade): frames wait for the next POST.
    pub(crate) buf: VecDeque<Frame>,
    pub(crate) buf_bytes: usize,
    pub(crate) max: usize,
}

#[derive(Debug)]
pub(crate) enum PushError {
    Full,
    /// The WebSocket is gone (the driver will see it); the frames were not sent.
    Closed(Vec<Frame>),
}

impl Out {
    /// Queues the frames of one packet. `limit`: refuse when over the queue limit
    /// (emits); protocol packets (pongs, acks, CONNECT) are never refused. Returns whether
    /// the driver must be woken to POST.
    pub(crate) fn push(&mut self, frames: Vec<Frame>, limit: bool) -> Result<bool, PushError> {
        if let Some(ws) = &self.ws {
            if limit {
                let queued = ws.buffered_bytes();
                let total: usize = frames.iter().map(Frame::len).sum();
                if queued > 0 && queued.saturating_add(total) > self.max {
                    return Err(PushError::Full);
                }
            }
            let mut it = frames.into_iter();
            if let Some(first) = it.next() {
                match ws.send(first.into_ws()) {
                    Ok(()) => {}
                    Err(SendError::QueueFull(_)) => return Err(PushError::Full),
                    Err(SendError::Closed(m)) => {
                        let mut back = vec![frame_of(m)];
                        back.extend(it);
                        return Err(PushError::Closed(back));
                    }
                }
            }
            // The rest of a binary packet: if the socket died in between, the connection
            // is lost anyway.
            for f in it {
                let _ = ws.send(f.into_ws());
            }
            return Ok(false);
        }
        let total: usize = frames.iter().map(|f| f.polling_len() + 1).sum();
        if limit && self.buf_bytes > 0 && self.buf_bytes.saturating_add(total) > self.max {
            return Err(PushError::Full);
        }
        self.buf_bytes = self.buf_bytes.saturating_add(total);
        self.buf.extend(frames);
        Ok(true)
    }

    /// Takes frames for one POST of at most `max` bytes (at least one frame).
    fn take_post(&mut self, max: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut size = 0usize;
        while let Some(f) = self.buf.front() {
            let len = f.polling_len() + 1;
            if !out.is_empty() && size.saturating_add(len) > max {
                break;
            }
            size = size.saturating_add(len);
            self.buf_bytes = self.buf_bytes.saturating_sub(len);
            if let Some(f) = self.buf.pop_front() {
                out.push(f);
            }
        }
        out
    }

    fn close(&mut self) -> Vec<Frame> {
        self.open = false;
        self.ws = None;
        self.buf_bytes = 0;
        self.buf.drain(..).collect()
    }
}

fn frame_of(m: iolite_ws_proto::Message) -> Frame {
    match m {
        iolite_ws_proto::Message::Binary(b) => Frame::Binary(b),
        iolite_ws_proto::Message::Text(t) => Frame::Text(t),
        _ => Frame::Binary(bytes::Bytes::new()),
    }
}

/// An emit waiting for the socket to connect.
pub(crate) struct Buffered {
    pub(crate) frames: Vec<Frame>,
    pub(crate) ack_id: Option<u64>,
}

pub(crate) type AckSlot = oneshot::Sender<Result<Payload, AckError>>;

/// Per-namespace state, under the manager's lock.
pub(crate) struct NsState {
    pub(crate) shared: Arc<SocketShared>,
    /// Wants to be connected (socket.io-client's `active`).
    pub(crate) active: bool,
    pub(crate) connected: bool,
    pub(crate) id: Option<String>,
    pub(crate) pid: Option<String>,
    pub(crate) last_offset: Option<String>,
    pub(crate) recovered: bool,
    pub(crate) auth: Option<Value>,
    pub(crate) send_buffer: VecDeque<Buffered>,
    pub(crate) acks: HashMap<u64, AckSlot>,
    pub(crate) connect_waiters: Vec<oneshot::Sender<Result<(), ConnectError>>>,
}

impl NsState {
    pub(crate) fn new(shared: Arc<SocketShared>) -> Self {
        Self {
            shared,
            active: false,
            connected: false,
            id: None,
            pid: None,
            last_offset: None,
            recovered: false,
            auth: None,
            send_buffer: VecDeque::new(),
            acks: HashMap::new(),
            connect_waiters: Vec::new(),
        }
    }

    /// The CONNECT packet: `auth`, with `pid` and `offset` first when recovering (as
    /// socket.io-client's `Object.assign({pid, offset}, auth)`).
    pub(crate) fn connect_frames(&self, codec_kind: Parser) -> Vec<Frame> {
        let data = match &self.pid {
            Some(pid) => {
                let mut m = Map::new();
                m.insert("pid".into(), Value::String(pid.clone()));
                if let Some(off) = &self.last_offset {
                    m.insert("offset".into(), Value::String(off.clone()));
                }
                if let Some(Value::Object(auth)) = &self.auth {
                    for (k, v) in auth {
                        m.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(m)
            }
            None => self.auth.clone().unwrap_or(Value::Null),
        };
        codec::encode_packet(
            codec_kind,
            &parser::Packet::connect(self.shared.nsp.clone(), data),
        )
    }

    /// Fails the acks that are not waiting in the send buffer (socket.io-client's
    /// `_clearAcks`).
    fn clear_acks(&mut self) {
        let buffered: Vec<u64> = self.send_buffer.iter().filter_map(|b| b.ack_id).collect();
        let ids: Vec<u64> = self
            .acks
            .keys()
            .copied()
            .filter(|id| !buffered.contains(id))
            .collect();
        for id in ids {
            if let Some(tx) = self.acks.remove(&id) {
                let _ = tx.send(Err(AckError::Disconnected));
            }
        }
    }

    /// Closes the socket for good: no reconnection, pending acks and buffered emits fail.
    pub(crate) fn deactivate(&mut self, why: ConnectError) {
        self.active = false;
        self.connected = false;
        self.id = None;
        self.send_buffer.clear();
        self.clear_acks();
        for w in self.connect_waiters.drain(..) {
            let _ = w.send(Err(why.clone()));
        }
    }
}

/// Lifecycle events: queued at once (under the manager's lock, which keeps them in
/// order), handlers run once the lock is released.
#[derive(Default)]
pub(crate) struct Notes(Vec<(Arc<SocketShared>, Lifecycle)>);

impl Notes {
    pub(crate) fn push(&mut self, s: &Arc<SocketShared>, l: Lifecycle) {
        s.record(&l);
        self.0.push((s.clone(), l));
    }

    pub(crate) fn run(self) {
        for (s, l) in self.0 {
            s.notify(&l);
        }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    fn any_active(&self) -> bool {
        self.lock().nsps.values().any(|n| n.active)
    }

    /// Sends (or buffers, while the socket is not connected) the frames of one packet of
    /// namespace `nsp`, registering `ack` once it is queued.
    pub(crate) fn send_frames(
        &self,
        nsp: &str,
        frames: Vec<Frame>,
        ack: Option<(u64, AckSlot)>,
    ) -> Result<(), EmitError> {
        let mut st = self.lock();
        let State { out, nsps, .. } = &mut *st;
        let ns = nsps.get_mut(nsp).ok_or(EmitError::Closed)?;
        if !ns.active {
            return Err(EmitError::Closed);
        }
        let mut frames = frames;
        if ns.connected && out.open {
            match out.push(frames, true) {
                Ok(wake) => {
                    if let Some((id, tx)) = ack {
                        ns.acks.insert(id, tx);
                    }
                    drop(st);
                    if wake {
                        self.wake.notify_one();
                    }
                    return Ok(());
                }
                Err(PushError::Full) => return Err(EmitError::Full),
                // The connection just died: keep it for after the reconnection.
                Err(PushError::Closed(back)) => frames = back,
            }
        }
        if ns.send_buffer.len() >= self.cfg.max_buffered_packets {
            return Err(EmitError::Full);
        }
        let ack_id = ack.as_ref().map(|(id, _)| *id);
        ns.send_buffer.push_back(Buffered { frames, ack_id });
        if let Some((id, tx)) = ack {
            ns.acks.insert(id, tx);
        }
        Ok(())
    }

    /// Sends an ACK: only on a connected socket, never refused for being over the limit.
    pub(crate) fn send_ack(&self, nsp: &str, frames: Vec<Frame>) -> Result<(), EmitError> {
        let mut st = self.lock();
        let State { out, nsps, .. } = &mut *st;
        match nsps.get(nsp) {
            Some(ns) if ns.connected && out.open => {}
            _ => return Err(EmitError::Closed),
        }
        match out.push(frames, false) {
            Ok(wake) => {
                drop(st);
                if wake {
                    self.wake.notify_one();
                }
                Ok(())
            }
            Err(PushError::Full) => Err(EmitError::Full),
            Err(PushError::Closed(_)) => Err(EmitError::Closed),
        }
    }

    /// Forgets an ack (its future timed out or was dropped); on timeout also drops the
    /// emit if it still waits in the send buffer, as socket.io-client does.
    pub(crate) fn cancel_ack(&self, nsp: &str, id: u64, unsend: bool) {
        let mut st = self.lock();
        if let Some(ns) = st.nsps.get_mut(nsp) {
            ns.acks.remove(&id);
            if unsend {
                ns.send_buffer.retain(|b| b.ack_id != Some(id));
            }
        }
    }

    /// Activates a namespace: sends its CONNECT if the connection is open, else wakes the
    /// driver to open it. `waiter` is told the outcome.
    pub(crate) fn activate(
        &self,
        nsp: &str,
        waiter: Option<oneshot::Sender<Result<(), ConnectError>>>,
    ) {
        let mut st = self.lock();
        let State { out, nsps, .. } = &mut *st;
        let Some(ns) = nsps.get_mut(nsp) else { return };
        if let Some(w) = waiter {
            if ns.connected {
                let _ = w.send(Ok(()));
            } else {
                ns.connect_waiters.push(w);
            }
        }
        if ns.active {
            return;
        }
        ns.active = true;
        if out.open {
            let frames = ns.connect_frames(self.cfg.parser);
            let _ = out.push(frames, false);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Disconnects a namespace on the client's initiative.
    pub(crate) fn disconnect(&self, nsp: &str) {
        let mut notes = Notes::default();
        {
            let mut st = self.lock();
            let State { out, nsps, .. } = &mut *st;
            let Some(ns) = nsps.get_mut(nsp) else { return };
            let was = ns.connected;
            if was && out.open {
                let frames = codec::encode_packet(
                    self.cfg.parser,
                    &parser::Packet::disconnect(ns.shared.nsp.clone()),
                );
                let _ = out.push(frames, false);
            }
            if ns.active {
                ns.deactivate(ConnectError::Closed);
            }
            if was {
                notes.push(
                    &ns.shared,
                    Lifecycle::Disconnect(DisconnectReason::ClientDisconnect),
                );
            }
        }
        notes.run();
        self.wake.notify_one();
    }
}

/// An open Engine.IO connection.
enum Active {
    Ws(WsTransport),
    Polling(Polling),
}

struct Conn {
    transport: Active,
    hs: Handshake,
    ping_deadline: Instant,
    /// The WebSocket probe in progress.
    probe: Option<AbortOnDrop<Result<WsTransport, String>>>,
    /// A successful probe, waiting for polling to pause.
    upgrade: Option<WsTransport>,
    /// Packets that came with the handshake.
    pending: Vec<Packet>,
}

/// A task that is cancelled with its handle.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The task that runs the connection.
struct Driver {
    inner: Arc<Inner>,
    decoder: Decoder,
    rng: Rng,
    backoff: Backoff,
}

impl Driver {
    async fn run(mut self) {
        let inner = self.inner.clone();
        let mut reconnecting = false;
        'outer: loop {
            // Wait until a socket wants the connection.
            loop {
                if inner.is_shutdown() {
                    return;
                }
                if inner.any_active() {
                    break;
                }
                inner.wake.notified().await;
            }
            if reconnecting {
                if let Some(max) = inner.cfg.reconnection_attempts {
                    if self.backoff.attempts >= max {
                        tracing::debug!(attempts = max, "reconnection failed");
                        self.backoff.reset();
                        reconnecting = false;
                        self.fail_all(ConnectError::ReconnectFailed);
                        continue;
                    }
                }
                let delay = self.backoff.duration(&mut self.rng);
                tracing::debug!(?delay, attempt = self.backoff.attempts, "reconnecting");
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        _ = inner.wake.notified() => {
                            if inner.is_shutdown() {
                                return;
                            }
                            if !inner.any_active() {
                                self.backoff.reset();
                                reconnecting = false;
                                continue 'outer;
                            }
                        }
                    }
                }
            }
            let opened = tokio::time::timeout(inner.cfg.timeout, self.open()).await;
            let opened = match opened {
                Ok(r) => r,
                Err(_) => Err("timeout".to_owned()),
            };
            match opened {
                Ok(conn) => {
                    self.backoff.reset();
                    reconnecting = false;
                    let reason = self.run_open(conn).await;
                    tracing::debug!(%reason, "connection closed");
                    self.on_closed(reason);
                    if inner.is_shutdown() {
                        return;
                    }
                    if reason == DisconnectReason::ForcedClose {
                        continue;
                    }
                    if !inner.cfg.reconnection {
                        self.fail_all(ConnectError::Transport(reason.as_str().into()));
                        continue;
                    }
                    reconnecting = true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not connect");
                    self.on_open_error(&e);
                    if !inner.cfg.reconnection {
                        self.fail_all(ConnectError::Transport(e));
                        continue;
                    }
                    reconnecting = true;
                }
            }
        }
    }

    /// Opens an Engine.IO connection on the first transport.
    async fn open(&mut self) -> Result<Conn, String> {
        self.decoder.reset();
        let cfg = &self.inner.cfg;
        let tcfg = &self.inner.tcfg;
        let first = cfg
            .transports
            .first()
            .copied()
            .unwrap_or(Transport::Polling);
        let conn = match first {
            Transport::WebSocket => {
                let mut ws = WsTransport::connect(tcfg, None).await?;
                let hs = match ws.recv().await {
                    TransportEvent::Packet(p) => Handshake::parse(&p)?,
                    TransportEvent::Closed(_, e) => return Err(e),
                    _ => return Err("websocket error: no handshake".into()),
                };
                Conn {
                    transport: Active::Ws(ws),
                    ping_deadline: Instant::now() + hs.ping_deadline(),
                    hs,
                    probe: None,
                    upgrade: None,
                    pending: Vec::new(),
                }
            }
            Transport::Polling => {
                let (hs, pending, http) = transport::polling_handshake(tcfg, &mut self.rng).await?;
                let max_post = hs
                    .max_payload
                    .filter(|&n| n > 0)
                    .unwrap_or(iolite_engine::DEFAULT_MAX_PAYLOAD);
                let polling = Polling::start(tcfg.clone(), hs.sid.clone(), http, max_post);
                let probe = (cfg.upgrade
                    && cfg.transports.contains(&Transport::WebSocket)
                    && hs.upgrades.iter().any(|u| u == "websocket"))
                .then(|| {
                    let (tcfg, sid, limit) = (tcfg.clone(), hs.sid.clone(), cfg.timeout);
                    AbortOnDrop(tokio::spawn(async move {
                        tokio::time::timeout(limit, transport::probe(tcfg, sid))
                            .await
                            .unwrap_or_else(|_| Err("probe timeout".into()))
                    }))
                });
                Conn {
                    transport: Active::Polling(polling),
                    ping_deadline: Instant::now() + hs.ping_deadline(),
                    hs,
                    probe,
                    upgrade: None,
                    pending,
                }
            }
        };
        // Open: every active socket sends its CONNECT.
        let mut st = self.inner.lock();
        let State {
            out,
            nsps,
            transport,
            engine_id,
        } = &mut *st;
        out.open = true;
        out.ws = match &conn.transport {
            Active::Ws(ws) => Some(ws.sender.clone()),
            Active::Polling(_) => None,
        };
        *transport = Some(first);
        *engine_id = Some(conn.hs.sid.clone());
        for ns in nsps.values().filter(|n| n.active) {
            let _ = out.push(ns.connect_frames(cfg.parser), false);
        }
        Ok(conn)
    }

    /// Runs an open connection until it closes; returns why.
    async fn run_open(&mut self, mut conn: Conn) -> DisconnectReason {
        let inner = self.inner.clone();
        for p in std::mem::take(&mut conn.pending) {
            if let Err(r) = self.on_engine_packet(p, &mut conn) {
                return r;
            }
        }
        loop {
            if inner.is_shutdown() || !inner.any_active() {
                self.close_gracefully(conn).await;
                return DisconnectReason::ForcedClose;
            }
            self.flush(&mut conn);
            let Conn {
                transport,
                probe,
                ping_deadline,
                ..
            } = &mut conn;
            let deadline = *ping_deadline;
            let ev = tokio::select! {
                ev = async {
                    match transport {
                        Active::Ws(ws) => ws.recv().await,
                        Active::Polling(p) => p.recv().await,
                    }
                } => ev,
                _ = tokio::time::sleep_until(deadline) => return DisconnectReason::PingTimeout,
                _ = inner.wake.notified() => continue,
                res = async {
                    match probe {
                        Some(h) => (&mut h.0).await,
                        None => std::future::pending().await,
                    }
                } => {
                    conn.probe = None;
                    match res {
                        Ok(Ok(ws)) => {
                            if let Active::Polling(p) = &conn.transport {
                                p.pause();
                                conn.upgrade = Some(ws);
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "upgrade failed"),
                        Err(e) => tracing::debug!(error = %e, "probe task failed"),
                    }
                    continue;
                }
            };
            match ev {
                TransportEvent::Packet(p) => {
                    if let Err(r) = self.on_engine_packet(p, &mut conn) {
                        return r;
                    }
                }
                TransportEvent::Packets(ps) => {
                    for p in ps {
                        if let Err(r) = self.on_engine_packet(p, &mut conn) {
                            return r;
                        }
                    }
                }
                TransportEvent::PostDone | TransportEvent::Paused => {}
                TransportEvent::Closed(reason, e) => {
                    tracing::debug!(error = %e, %reason, "transport closed");
                    return reason;
                }
            }
        }
    }

    /// Polling: starts the next POST, or completes a pending upgrade.
    fn flush(&mut self, conn: &mut Conn) {
        let Active::Polling(p) = &mut conn.transport else {
            return;
        };
        if conn.upgrade.is_some() {
            if p.paused && !p.post_in_flight {
                let Some(ws) = conn.upgrade.take() else {
                    return;
                };
                {
                    let mut st = self.inner.lock();
                    ws.send(Frame::UPGRADE);
                    st.out.buf_bytes = 0;
                    for f in std::mem::take(&mut st.out.buf) {
                        ws.send(f);
                    }
                    st.out.ws = Some(ws.sender.clone());
                    st.transport = Some(Transport::WebSocket);
                }
                tracing::debug!("upgraded to websocket");
                conn.transport = Active::Ws(ws);
            }
            return;
        }
        if p.post_in_flight {
            return;
        }
        let frames = self.inner.lock().out.take_post(p.max_post);
        if !frames.is_empty() {
            p.post(&frames);
        }
    }

    /// Closes on the client's initiative: queued packets go out first, then `close`.
    async fn close_gracefully(&mut self, conn: Conn) {
        let rest = self.inner.lock().out.close();
        let Conn {
            transport, upgrade, ..
        } = conn;
        if let Some(ws) = upgrade {
            ws.close();
        }
        match transport {
            // As engine.io-client: the WebSocket close frame, no `close` packet (queued
            // packets go out before it).
            Active::Ws(ws) => ws.close(),
            Active::Polling(p) => p.close(rest, Duration::from_secs(2)).await,
        }
    }

    fn on_engine_packet(&mut self, p: Packet, conn: &mut Conn) -> Result<(), DisconnectReason> {
        match p {
            Packet::Ping(_) => {
                conn.ping_deadline = Instant::now() + conn.hs.ping_deadline();
                let _ = self.inner.lock().out.push(vec![Frame::PONG], false);
                Ok(())
            }
            Packet::Close => Err(DisconnectReason::TransportClose),
            Packet::Message(data) => match self.decoder.decode(data) {
                Ok(Some(packet)) => {
                    self.on_packet(packet);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => {
                    tracing::debug!(error = %e, "invalid packet from the server");
                    Err(DisconnectReason::ParseError)
                }
            },
            Packet::Open(_) | Packet::Pong(_) | Packet::Upgrade | Packet::Noop => Ok(()),
        }
    }

    /// A Socket.IO packet from the server.
    fn on_packet(&mut self, packet: parser::Packet) {
        let mut notes = Notes::default();
        let mut deliver = None;
        {
            let mut st = self.inner.lock();
            let State { out, nsps, .. } = &mut *st;
            let Some(ns) = nsps.get_mut(packet.nsp.as_str()) else {
                return;
            };
            if !ns.active {
                return;
            }
            match packet.kind {
                PacketType::Connect => match packet.data.get("sid").and_then(Value::as_str) {
                    Some(sid) => {
                        let pid = packet
                            .data
                            .get("pid")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        ns.recovered = pid.is_some() && ns.pid == pid;
                        ns.pid = pid;
                        ns.id = Some(sid.to_owned());
                        ns.connected = true;
                        for b in std::mem::take(&mut ns.send_buffer) {
                            let _ = out.push(b.frames, false);
                        }
                        for w in ns.connect_waiters.drain(..) {
                            let _ = w.send(Ok(()));
                        }
                        notes.push(
                            &ns.shared,
                            Lifecycle::Connect {
                                recovered: ns.recovered,
                            },
                        );
                    }
                    None => {
                        let e = ConnectError::Refused {
                                message: "It seems you are trying to reach a Socket.IO server in v2.x with a v3.x client, but they are not compatible (more information here: https://socket.io/docs/v3/migrating-from-2-x-to-3-0/)".into(),
                                data: None,
                            };
                        ns.deactivate(e.clone());
                        notes.push(&ns.shared, Lifecycle::ConnectError(e));
                    }
                },
                PacketType::Event | PacketType::BinaryEvent => {
                    let (mut args, attachments) = match packet.data {
                        Value::Array(a) => (a, packet.attachments),
                        _ => return,
                    };
                    if args.is_empty() {
                        return;
                    }
                    let name = match args.remove(0) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let mut payload = Payload::new(args, attachments);
                    // socket.io-client tracks the offset of the last event when the
                    // server does connection state recovery: the last argument, a string.
                    // Events with an ack id are never stored by the server, so never
                    // carry one.
                    let mut offset = None;
                    if ns.pid.is_some()
                        && packet.id.is_none()
                        && matches!(payload.last(), Some(Value::String(_)))
                    {
                        if let Some(Value::String(s)) = payload.take_last() {
                            ns.last_offset = Some(s.clone());
                            offset = Some(s);
                        }
                    }
                    let ack = packet
                        .id
                        .map(|id| AckSender::new(self.inner.clone(), ns.shared.clone(), id));
                    deliver = Some((
                        ns.shared.clone(),
                        Event {
                            name,
                            args: payload,
                            ack,
                            offset,
                        },
                    ));
                }
                PacketType::Ack | PacketType::BinaryAck => {
                    if let Some(tx) = packet.id.and_then(|id| ns.acks.remove(&id)) {
                        let args = match packet.data {
                            Value::Array(a) => a,
                            _ => Vec::new(),
                        };
                        let _ = tx.send(Ok(Payload::new(args, packet.attachments)));
                    }
                }
                PacketType::Disconnect => {
                    let was = ns.connected;
                    ns.deactivate(ConnectError::Closed);
                    if was {
                        notes.push(
                            &ns.shared,
                            Lifecycle::Disconnect(DisconnectReason::ServerDisconnect),
                        );
                    }
                }
                PacketType::ConnectError => {
                    let (message, data) = match packet.data {
                        Value::String(s) => (s, None),
                        Value::Object(mut m) => (
                            match m.remove("message") {
                                Some(Value::String(s)) => s,
                                Some(v) => v.to_string(),
                                None => String::new(),
                            },
                            m.remove("data"),
                        ),
                        _ => (String::new(), None),
                    };
                    let e = ConnectError::Refused { message, data };
                    ns.deactivate(e.clone());
                    notes.push(&ns.shared, Lifecycle::ConnectError(e));
                }
            }
        }
        notes.run();
        if let Some((shared, event)) = deliver {
            shared.dispatch(event);
        }
    }

    /// The connection closed: connected sockets are disconnected with `reason`.
    fn on_closed(&mut self, reason: DisconnectReason) {
        self.decoder.reset();
        let mut notes = Notes::default();
        {
            let mut st = self.inner.lock();
            st.out.close();
            st.transport = None;
            st.engine_id = None;
            for ns in st.nsps.values_mut() {
                if ns.connected {
                    ns.connected = false;
                    ns.id = None;
                    ns.clear_acks();
                    notes.push(&ns.shared, Lifecycle::Disconnect(reason));
                }
            }
        }
        notes.run();
    }

    /// Opening failed: sockets waiting to connect get a `connect_error`.
    fn on_open_error(&mut self, e: &str) {
        let mut notes = Notes::default();
        {
            let st = self.inner.lock();
            for ns in st.nsps.values().filter(|n| n.active && !n.connected) {
                notes.push(
                    &ns.shared,
                    Lifecycle::ConnectError(ConnectError::Transport(e.to_owned())),
                );
            }
        }
        notes.run();
    }

    /// No more attempts: every active socket is closed.
    fn fail_all(&mut self, why: ConnectError) {
        let mut notes = Notes::default();
        {
            let mut st = self.inner.lock();
            for ns in st.nsps.values_mut().filter(|n| n.active) {
                ns.deactivate(why.clone());
                if matches!(why, ConnectError::ReconnectFailed) {
                    notes.push(&ns.shared, Lifecycle::ConnectError(why.clone()));
                }
            }
        }
        notes.run();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_posts_are_cut_to_the_server_limit() {
        let mut out = Out {
            open: true,
            ws: None,
            buf: VecDeque::new(),
            buf_bytes: 0,
            max: 100,
        };
        let f = |s: &'static str| Frame::Text(iolite_ws_proto::Utf8Bytes::from_static(s));
        assert!(out.push(vec![f("4aaaaaaaaa")], true).unwrap());
        assert!(out.push(vec![f("4bbbbbbbbb")], true).unwrap());
        assert!(out.push(vec![f("4ccccccccc")], true).unwrap());
        assert_eq!(out.buf_bytes, 33);
        // One POST takes what fits in 25 bytes, but always at least one packet.
        assert_eq!(out.take_post(25).len(), 2);
        assert_eq!(out.take_post(5).len(), 1);
        assert!(out.take_post(5).is_empty());
        assert_eq!(out.buf_bytes, 0);
        // The limit refuses an emit once something is queued; control packets pass.
        let big = "4".repeat(98);
        assert!(out
            .push(vec![Frame::Text(big.clone().into())], true)
            .is_ok());
        assert!(matches!(
            out.push(vec![f("4x")], true).map(|_| ()).unwrap_err(),
            PushError::Full
        ));
        assert!(out.push(vec![f("4x")], false).is_ok());
    }
}
