//! The adapter of one namespace: what it publishes, and what it does with what the other
//! nodes publish.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use iolite::adapter::{
    AckCollector, AckEvent, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalNamespace,
    ServerAck, SocketInfo,
};
use iolite::parser::Packet;
use iolite::{AckResponse, Room, Sid};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::client::{MessageSink, RedisClient};
use crate::wire::{
    self, BroadcastMessage, Channels, Request, RequestKind, RequestType, Response, Target,
};

/// How long a broadcast with acks waits when it was given no timeout (as `AckStream`).
const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of the adapters (Node's `createAdapter(pub, sub, opts)`).
#[derive(Clone, Debug)]
pub struct AdapterOptions {
    /// The prefix of every channel (`key`; default `socket.io`). Nodes of one cluster
    /// share it.
    pub key: String,
    /// How long `fetch_sockets` and `all_rooms` wait for the other nodes
    /// (`requestsTimeout`; default 5 s).
    pub requests_timeout: Duration,
    /// Answer requests on the asking node's own response channel instead of the shared
    /// one (`publishOnSpecificResponseChannel`; default `false`). Every node subscribes
    /// to both, so nodes with either setting work together.
    pub publish_on_specific_response_channel: bool,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
        }
    }
}

/// The Redis pub/sub adapter of one namespace, wire-compatible with Node's
/// `@socket.io/redis-adapter` 8.x: see the [crate docs](crate).
pub struct RedisAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    local: LocalNamespace,
    client: RedisClient,
    options: AdapterOptions,
    uid: String,
    channels: Channels,
    /// Requests waiting for answers (`fetch_sockets`, `all_rooms`, server-side emits).
    requests: Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
    /// Broadcasts with acks this node sent, until their timeout.
    ack_requests: Mutex<HashMap<String, AckCollector>>,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single map operations: a panic cannot leave one half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Six characters of `[A-Za-z0-9]`, as npm's `uid2(6)` makes node and request ids.
fn uid6() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: ids from the clock still differ between nodes and requests.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = std::array::from_fn(|i| (t >> (i * 8)) as u8);
    }
    b.iter()
        .map(|&x| CHARS[usize::from(x) % CHARS.len()] as char)
        .collect()
}

impl RedisAdapter {
    /// The adapter of namespace `local` on `client`, default options.
    pub fn new(local: LocalNamespace, client: &RedisClient) -> Self {
        Self::with_options(local, client, AdapterOptions::default())
    }

    /// The adapter of namespace `local` on `client`. Subscribes its channels (starting the
    /// client's connections if they are not running).
    pub fn with_options(
        local: LocalNamespace,
        client: &RedisClient,
        options: AdapterOptions,
    ) -> Self {
        let uid = uid6();
        let channels = Channels::new(&options.key, local.name(), &uid);
        let inner = Arc::new(Inner {
            local,
            client: client.clone(),
            options,
            uid,
            channels,
            requests: Mutex::default(),
            ack_requests: Mutex::default(),
            closed: AtomicBool::new(false),
        });
        let sink: Weak<dyn MessageSink> = Arc::downgrade(&(inner.clone() as Arc<dyn MessageSink>));
        client.register(
            sink,
            &inner.subscribed_channels(),
            &inner.channels.broadcast_pattern(),
        );
        client.start();
        Self { inner }
    }

    /// This node's id in the cluster (for this namespace), as its messages carry it.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The channels of this namespace.
    pub fn channels(&self) -> &Channels {
        &self.inner.channels
    }
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl Inner {
    fn subscribed_channels(&self) -> Vec<String> {
        vec![
            self.channels.request.clone(),
            self.channels.response.clone(),
            self.channels.specific_response.clone(),
        ]
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.client.unregister(
            &self.subscribed_channels(),
            &self.channels.broadcast_pattern(),
        );
        lock(&self.requests).clear();
        lock(&self.ack_requests).clear();
    }

    fn publish_request(&self, request: &Request) -> Result<(), AdapterError> {
        self.client
            .publish(self.channels.request.clone(), request.encode())
    }

    fn publish_response(&self, to_uid: &str, payload: Vec<u8>) {
        let channel = self
            .channels
            .response_to(to_uid, self.options.publish_on_specific_response_channel);
        if let Err(e) = self.client.publish(channel, payload) {
            tracing::debug!(error = %e, "iolite-redis: could not answer a request");
        }
    }

    /// Nodes subscribed to the namespace's request channel, this one included.
    async fn node_count(&self) -> Result<usize, AdapterError> {
        self.client
            .numsub(&self.channels.request)
            .await
            .map_err(AdapterError::Unavailable)
    }

    /// Publishes `kind` with a fresh request id and waits for `expected` answers.
    async fn request(
        &self,
        kind: RequestKind,
        expected: usize,
        timeout: Duration,
    ) -> Result<Vec<Response>, AdapterError> {
        let id = uid6();
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.requests).insert(id.clone(), tx);
        struct Forget<'a>(
            &'a Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
            String,
        );
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                lock(self.0).remove(&self.1);
            }
        }
        let _forget = Forget(&self.requests, id.clone());
        self.publish_request(&Request {
            uid: self.uid.clone(),
            request_id: Some(id),
            kind,
        })?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::with_capacity(expected);
        while out.len() < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => out.push(r),
                _ => return Err(AdapterError::Timeout),
            }
        }
        Ok(out)
    }

    fn on_broadcast(&self, payload: &[u8]) {
        let msg = match BroadcastMessage::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                self.client.count_malformed();
                tracing::debug!(error = %e, "iolite-redis: dropped a malformed broadcast");
                return;
            }
        };
        if msg.uid == self.uid || msg.packet.nsp.as_str() != self.local.name() {
            return;
        }
        self.local.broadcast(&msg.packet, &msg.opts);
    }

    fn on_request(&self, payload: &[u8]) {
        let request = match Request::decode(payload) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                self.client.count_malformed();
                tracing::debug!(error = %e, "iolite-redis: dropped a malformed request");
                return;
            }
        };
        if request.uid == self.uid {
            // Our own: already done here when it was sent.
            return;
        }
        let id = request.request_id.clone().unwrap_or_default();
        let answer = |payload: Vec<u8>| self.publish_response(&request.uid, payload);
        match request.kind {
            RequestKind::Sockets { rooms } => {
                let opts = BroadcastOptions {
                    rooms,
                    ..Default::default()
                };
                let ids: Vec<Sid> = self.local.sockets(&opts).iter().map(|s| s.id()).collect();
                answer(wire::sockets_response(&id, &ids));
            }
            RequestKind::AllRooms => answer(wire::all_rooms_response(&id, &self.local.rooms())),
            RequestKind::RemoteJoin { target, rooms } => match target {
                Target::Sockets(opts) => self.local.add_sockets(&opts, &rooms),
                Target::Socket(sid) => {
                    if self.with_socket(&sid, |opts| self.local.add_sockets(opts, &rooms)) {
                        answer(wire::done_response(&id));
                    }
                }
            },
            RequestKind::RemoteLeave { target, rooms } => match target {
                Target::Sockets(opts) => self.local.del_sockets(&opts, &rooms),
                Target::Socket(sid) => {
                    if self.with_socket(&sid, |opts| self.local.del_sockets(opts, &rooms)) {
                        answer(wire::done_response(&id));
                    }
                }
            },
            RequestKind::RemoteDisconnect { target, close } => match target {
                Target::Sockets(opts) => self.local.disconnect_sockets(&opts, close),
                Target::Socket(sid) => {
                    if self.with_socket(&sid, |opts| self.local.disconnect_sockets(opts, close)) {
                        answer(wire::done_response(&id));
                    }
                }
            },
            RequestKind::RemoteFetch { opts } => {
                answer(wire::fetch_response(&id, &self.local.fetch_sockets(&opts)));
            }
            RequestKind::ServerSideEmit { mut data } => {
                let Some(Value::String(event)) = data.first().cloned() else {
                    return;
                };
                data.remove(0);
                if request.request_id.is_none() {
                    self.local.server_side_event(&event, data, None);
                    return;
                }
                let (ack, rx) = ServerAck::channel();
                self.local.server_side_event(&event, data, Some(ack));
                let client = self.client.clone();
                // Node answers server-side emits on the shared response channel always.
                let channel = self.channels.response.clone();
                spawn(async move {
                    if let Ok(v) = rx.await {
                        let _ =
                            client.publish(channel, wire::server_side_emit_response(&id, Some(&v)));
                    }
                });
            }
            RequestKind::Broadcast { packet, opts } => {
                if lock(&self.ack_requests).contains_key(&id) {
                    return;
                }
                self.remote_broadcast_with_ack(&request.uid, id, packet, opts);
            }
        }
    }

    /// Runs `f` with the options selecting socket `sid` if it is connected here.
    fn with_socket(&self, sid: &str, f: impl FnOnce(&BroadcastOptions)) -> bool {
        let Ok(sid) = Sid::parse(sid) else {
            return false;
        };
        let opts = BroadcastOptions::socket(sid);
        if self.local.sockets(&opts).is_empty() {
            return false;
        }
        f(&opts);
        true
    }

    /// Another node's broadcast with acks: ask this node's selected sockets (one encode
    /// for all), report how many were asked, then relay each answer until all came or the
    /// timeout passed (the requests are then forgotten on the sockets).
    fn remote_broadcast_with_ack(
        &self,
        from: &str,
        id: String,
        packet: Packet,
        opts: BroadcastOptions,
    ) {
        let timeout = opts.flags.timeout.unwrap_or(self.options.requests_timeout);
        let (collector, mut events) = AckCollector::channel();
        let asked = self.local.broadcast_with_ack(&packet, &opts, &collector);
        // Published before any answer, as Node's node does.
        self.publish_response(from, wire::client_count_response(&id, asked));
        if asked == 0 {
            return;
        }
        let client = self.client.clone();
        let channel = self
            .channels
            .response_to(from, self.options.publish_on_specific_response_channel);
        spawn(async move {
            let _requests = collector;
            let deadline = tokio::time::Instant::now() + timeout;
            let mut answered = 0;
            while answered < asked {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(AckEvent::Response(r))) => {
                        answered += 1;
                        let payload = wire::ack_response(&id, r.args.first(), &r.attachments);
                        let _ = client.publish(channel.clone(), payload);
                    }
                    Ok(Some(AckEvent::Clients(_))) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        });
    }

    fn on_response(&self, payload: &[u8]) {
        let response = match Response::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                self.client.count_malformed();
                tracing::debug!(error = %e, "iolite-redis: dropped a malformed response");
                return;
            }
        };
        let acks = lock(&self.ack_requests).get(&response.request_id).cloned();
        if let Some(acks) = acks {
            match response.kind {
                Some(RequestType::BroadcastClientCount) => {
                    if let Some(n) = response.client_count() {
                        acks.client_count(n);
                    }
                }
                Some(RequestType::BroadcastAck) => {
                    let (args, attachments) = match response.ack() {
                        Some((v, a)) => (vec![v], a),
                        None => (Vec::new(), Vec::new()),
                    };
                    acks.response(AckResponse { args, attachments });
                }
                _ => {}
            }
            return;
        }
        if let Some(tx) = lock(&self.requests).get(&response.request_id) {
            let _ = tx.send(response);
        }
    }
}

impl MessageSink for Inner {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        self.client.count_received();
        // The response channels first: they share the request channel's key prefix.
        if channel.starts_with(&self.channels.response) {
            self.on_response(payload);
        } else if channel == self.channels.request {
            self.on_request(payload);
        } else if channel.starts_with(&self.channels.broadcast) {
            self.on_broadcast(payload);
        }
    }
}

/// Spawns on the current runtime (the subscriber's, or the caller's); without one the
/// answer is dropped, which the asking node sees as a timeout.
fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(f);
        }
        Err(_) => tracing::error!("iolite-redis: no tokio runtime to wait for an answer on"),
    }
}

impl Adapter for RedisAdapter {
    fn local(&self) -> &LocalNamespace {
        &self.inner.local
    }

    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let i = &self.inner;
        let published = if opts.flags.local {
            Ok(())
        } else {
            let msg = wire::encode_broadcast(&i.uid, &packet, &opts);
            i.client.publish(i.channels.for_broadcast(&opts), msg)
        };
        // Delivered here whether or not the other nodes could be told.
        i.local.broadcast(&packet, &opts);
        published
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        acks: AckCollector,
    ) -> Result<(), AdapterError> {
        let i = &self.inner;
        if !opts.flags.local {
            let id = uid6();
            lock(&i.ack_requests).insert(id.clone(), acks.clone());
            let request = Request {
                uid: i.uid.clone(),
                request_id: Some(id.clone()),
                kind: RequestKind::Broadcast {
                    packet: packet.clone(),
                    opts: opts.clone(),
                },
            };
            match i.publish_request(&request) {
                Ok(()) => {
                    // Nobody waits past the timeout: forget the request then, as Node does.
                    let weak = Arc::downgrade(i);
                    let wait = opts.flags.timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
                    spawn(async move {
                        tokio::time::sleep(wait).await;
                        if let Some(i) = weak.upgrade() {
                            lock(&i.ack_requests).remove(&id);
                        }
                    });
                }
                Err(e) => {
                    // This node's clients are still asked: with Redis down the stream counts
                    // one node and collects their answers.
                    lock(&i.ack_requests).remove(&id);
                    tracing::debug!(error = %e, "iolite-redis: broadcast with acks stays on this node");
                }
            }
        }
        i.local.broadcast_with_ack(&packet, &opts, &acks);
        Ok(())
    }

    fn server_count(&self) -> BoxFuture<'_, usize> {
        // Without Redis this node is all the cluster it can reach.
        Box::pin(async move { self.inner.node_count().await.unwrap_or(1).max(1) })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let i = &self.inner;
            let mut sockets = i.local.fetch_sockets(&opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let n = i.node_count().await?;
            if n <= 1 {
                return Ok(sockets);
            }
            let answers = i
                .request(
                    RequestKind::RemoteFetch { opts },
                    n - 1,
                    i.options.requests_timeout,
                )
                .await?;
            for r in answers {
                sockets.extend(r.fetched_sockets().unwrap_or_default());
            }
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.add_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        i.publish_request(&Request {
            uid: i.uid.clone(),
            request_id: None,
            kind: RequestKind::RemoteJoin {
                target: Target::Sockets(opts),
                rooms,
            },
        })
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.del_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        i.publish_request(&Request {
            uid: i.uid.clone(),
            request_id: None,
            kind: RequestKind::RemoteLeave {
                target: Target::Sockets(opts),
                rooms,
            },
        })
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.disconnect_sockets(&opts, close);
        if opts.flags.local {
            return Ok(());
        }
        i.publish_request(&Request {
            uid: i.uid.clone(),
            request_id: None,
            kind: RequestKind::RemoteDisconnect {
                target: Target::Sockets(opts),
                close,
            },
        })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let i = &self.inner;
            let mut rooms = i.local.rooms();
            let n = i.node_count().await?;
            if n <= 1 {
                return Ok(rooms);
            }
            let answers = i
                .request(RequestKind::AllRooms, n - 1, i.options.requests_timeout)
                .await?;
            let mut seen: HashSet<Room> = rooms.iter().cloned().collect();
            for r in answers {
                for room in r.rooms().unwrap_or_default() {
                    if seen.insert(room.clone()) {
                        rooms.push(room);
                    }
                }
            }
            Ok(rooms)
        })
    }

    fn server_side_emit(&self, event: String, args: Vec<Value>) -> Result<(), AdapterError> {
        let i = &self.inner;
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::String(event));
        data.extend(args);
        i.publish_request(&Request {
            uid: i.uid.clone(),
            request_id: None,
            kind: RequestKind::ServerSideEmit { data },
        })
    }

    fn server_side_emit_with_ack(
        &self,
        event: String,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Value>, AdapterError>> {
        Box::pin(async move {
            let i = &self.inner;
            let others = i.node_count().await?.saturating_sub(1);
            if others == 0 {
                return Ok(Vec::new());
            }
            let mut data = Vec::with_capacity(args.len() + 1);
            data.push(Value::String(event));
            data.extend(args);
            let answers = i
                .request(RequestKind::ServerSideEmit { data }, others, timeout)
                .await?;
            Ok(answers.iter().map(Response::server_side_data).collect())
        })
    }

    fn close(&self) {
        self.inner.close();
    }
}
