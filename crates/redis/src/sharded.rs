//! The sharded pub/sub adapter (Redis 7 `SSUBSCRIBE` / `SPUBLISH`), wire-compatible with
//! `createShardedAdapter` of Node's `@socket.io/redis-adapter` 8.3.
//!
//! It speaks socket.io-adapter's `ClusterAdapter` protocol, the message types of the
//! [streams adapter](crate::streams) but the heartbeats: each message is
//! `JSON.stringify({type, data, uid, nsp})`, or the notepack msgpack of the same object
//! when its data holds binary values. With the channel prefix `socket.io` (the default)
//! and namespace `/chat`:
//!
//! | shard channel | carries |
//! |---|---|
//! | `socket.io#/chat#` | every message of the namespace, but the ones below; `PUBSUB SHARDNUMSUB` of it is the node count |
//! | `socket.io#/chat#<uid>#` | the answers to node `<uid>`'s requests |
//! | `socket.io#/chat#<room>#` | a broadcast (without acks) to exactly one room, in the dynamic modes |
//!
//! [`SubscriptionMode`] says which rooms get a channel of their own: none (`Static`), the
//! rooms that are not a socket's own (`Dynamic`, the default), or every room
//! (`DynamicPrivate`). A node subscribes to a room's channel while one of its sockets is in
//! the room.
//!
//! As in Node, a request waits for `SHARDNUMSUB - 1` answers: a node is a member while its
//! subscriber connection is up, and stops being counted as soon as it closes. There are no
//! heartbeats.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use iolite::adapter::{
    AckCollector, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalNamespace, SocketInfo,
};
use iolite::parser::Packet;
use iolite::Room;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::client::{
    runtime, MessageSink, RedisClient, RedisClientError, RedisOptions, RedisStats,
};
use crate::cluster::{self, kind, Cluster, Expected, Message, Respond};
use crate::push::{self, Command, Kind, Registry};
use crate::{msgpack, wire};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are set and map operations: a panic cannot leave one half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which rooms get a shard channel of their own (Node's `subscriptionMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Two channels per namespace: every broadcast reaches every node (`"static"`).
    Static,
    /// Also one channel per room that is not a socket's own: a broadcast to one such room
    /// reaches only the nodes with a socket in it (`"dynamic"`, the default).
    #[default]
    Dynamic,
    /// Also one channel per room, a socket's own room included (`"dynamic-private"`).
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Node's name of the mode: `static`, `dynamic` or `dynamic-private`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
            Self::DynamicPrivate => "dynamic-private",
        }
    }
}

impl std::str::FromStr for SubscriptionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "static" => Ok(Self::Static),
            "dynamic" => Ok(Self::Dynamic),
            "dynamic-private" => Ok(Self::DynamicPrivate),
            other => Err(format!(
                "unknown subscription mode `{other}` (static, dynamic or dynamic-private)"
            )),
        }
    }
}

/// Options of the sharded adapters (Node's `createShardedAdapter(pub, sub, opts)`).
#[derive(Clone, Debug)]
pub struct ShardedOptions {
    /// The prefix of every channel (`channelPrefix`; default `socket.io`). Nodes of one
    /// cluster share it.
    pub channel_prefix: String,
    /// Which rooms get a channel of their own (`subscriptionMode`; default dynamic). Nodes
    /// of one cluster use the same mode.
    pub subscription_mode: SubscriptionMode,
    /// How long `fetch_sockets` waits for the other nodes when the call gives no timeout
    /// (5 s, as Node), and a broadcast with acks when it was given none.
    pub requests_timeout: Duration,
}

impl Default for ShardedOptions {
    fn default() -> Self {
        Self {
            channel_prefix: "socket.io".into(),
            subscription_mode: SubscriptionMode::default(),
            requests_timeout: Duration::from_secs(5),
        }
    }
}

struct Shared {
    /// Publishes (`SPUBLISH`) and counts (`PUBSUB SHARDNUMSUB`); its stats are this link's.
    publisher: RedisClient,
    /// The same server, over RESP3: the subscriber's pushes need it.
    redis: crate::endpoint::Endpoint,
    registry: Arc<Registry>,
    subs: mpsc::UnboundedSender<Command>,
    /// The subscriber's end of the queue, until a tokio runtime is there to run it.
    idle_subs: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
}

/// A node's link to Redis for the sharded adapters: a publishing connection and one
/// subscribed to shard channels, shared by the adapters of all its namespaces (Node's
/// `pubClient` / `subClient` pair). Cheap to clone.
///
/// Use one per [`SocketIo`](iolite::SocketIo): the node count is the number of
/// subscribers of a namespace's channel, so two servers on one client would count as one.
/// Nothing connects until the first adapter is made; both connections then reconnect by
/// themselves, and while Redis cannot be reached the node serves its own clients.
#[derive(Clone)]
pub struct ShardedClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ShardedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedClient")
            .field("publisher", &self.shared.publisher)
            .finish_non_exhaustive()
    }
}

impl ShardedClient {
    /// A client of the Redis server (7 or later) at `url`, default options.
    pub fn new(url: &str) -> Result<Self, RedisClientError> {
        Self::with_options(url, RedisOptions::default())
    }

    /// A client of the Redis server (7 or later) at `url`.
    pub fn with_options(url: &str, options: RedisOptions) -> Result<Self, RedisClientError> {
        let publisher = RedisClient::with_options(url, options)?;
        let redis = crate::endpoint::Endpoint::parse(url, true)?;
        let (subs, rx) = mpsc::unbounded_channel();
        Ok(Self {
            shared: Arc::new(Shared {
                publisher,
                redis,
                registry: Arc::default(),
                subs,
                idle_subs: Mutex::new(Some(rx)),
            }),
        })
    }

    /// The counters of this link: publishes and their failures, both connections'
    /// failures, resubscriptions, messages received.
    pub fn stats(&self) -> &RedisStats {
        self.shared.publisher.stats()
    }

    /// The adapter factory for [`Builder::adapter`](iolite::Builder::adapter): each
    /// namespace gets a [`ShardedAdapter`] with these options.
    pub fn adapter_factory(
        &self,
        options: ShardedOptions,
    ) -> impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static {
        let client = self.clone();
        move |local| {
            Arc::new(ShardedAdapter::with_options(
                local,
                &client,
                options.clone(),
            )) as Arc<dyn Adapter>
        }
    }

    /// Resolves once the subscriber connection is up and has subscribed every channel
    /// asked for so far, the rooms joined so far included (wrap it in a timeout: it waits
    /// as long as Redis is down).
    pub async fn ready(&self) {
        self.start();
        let (tx, rx) = oneshot::channel();
        if self.shared.subs.send(Command::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Closes both connections for good: this node leaves the cluster (the other nodes
    /// stop counting it at once), its adapters go on serving its own clients, and every
    /// publish fails from now on. For a graceful shutdown.
    pub fn close(&self) {
        self.shared.publisher.close();
        lock(&self.shared.idle_subs).take();
    }

    /// Starts both connections on the current tokio runtime, once.
    fn start(&self) {
        if !self.shared.publisher.start_publisher() {
            return;
        }
        let mut idle = lock(&self.shared.idle_subs);
        if self.shared.publisher.is_closed() {
            idle.take();
            return;
        }
        let Some(cmds) = idle.take() else { return };
        let Some(rt) = runtime() else {
            *idle = Some(cmds);
            return;
        };
        let p = &self.shared.publisher;
        let task = push::run(
            self.shared.redis.clone(),
            p.options().clone(),
            p.stats_handle(),
            self.shared.registry.clone(),
            cmds,
        );
        p.spawn_task(&rt, task);
    }

    fn subscribe(&self, channel: String, sink: Weak<dyn MessageSink>) {
        self.shared
            .registry
            .insert(Kind::Shard, channel.clone(), sink);
        let _ = self
            .shared
            .subs
            .send(Command::Subscribe(Kind::Shard, channel));
    }

    fn unsubscribe(&self, channel: String) {
        self.shared.registry.remove(Kind::Shard, &channel);
        let _ = self
            .shared
            .subs
            .send(Command::Unsubscribe(Kind::Shard, channel));
    }
}

/// Node's `looksLikeASocketId`: 20 UTF-16 code units.
fn looks_like_a_socket_id(room: &str) -> bool {
    room.encode_utf16().count() == 20
}

/// The sharded adapter of one namespace, wire-compatible with Node's
/// `createShardedAdapter`: see the [module docs](self).
pub struct ShardedAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    /// This adapter, for what outlives a call (answers, subscriptions).
    me: Weak<Inner>,
    cluster: Cluster,
    client: ShardedClient,
    options: ShardedOptions,
    uid: String,
    /// `{prefix}#{nsp}#`.
    channel: String,
    /// `{prefix}#{nsp}#{uid}#`.
    response_channel: String,
    /// The rooms whose channel this node is subscribed to (dynamic modes).
    rooms: Mutex<HashSet<Room>>,
    closed: AtomicBool,
}

impl ShardedAdapter {
    /// The adapter of namespace `local` on `client`, default options.
    pub fn new(local: LocalNamespace, client: &ShardedClient) -> Self {
        Self::with_options(local, client, ShardedOptions::default())
    }

    /// The adapter of namespace `local` on `client`. Subscribes its channels (starting the
    /// client's connections if they are not running).
    pub fn with_options(
        local: LocalNamespace,
        client: &ShardedClient,
        options: ShardedOptions,
    ) -> Self {
        let uid = cluster::random_id();
        let channel = format!("{}#{}#", options.channel_prefix, local.name());
        let response_channel = format!("{channel}{uid}#");
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            cluster: Cluster::new(local, options.requests_timeout),
            client: client.clone(),
            options,
            uid,
            channel,
            response_channel,
            rooms: Mutex::default(),
            closed: AtomicBool::new(false),
        });
        let sink = inner.sink();
        client.subscribe(inner.channel.clone(), sink.clone());
        client.subscribe(inner.response_channel.clone(), sink);
        client.start();
        Self { inner }
    }

    /// This node's id in the cluster (for this namespace), as its messages carry it.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    /// The namespace's channel (`{prefix}#{nsp}#`).
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }
}

impl Drop for ShardedAdapter {
    fn drop(&mut self) {
        self.inner.close();
    }
}

impl Inner {
    fn sink(&self) -> Weak<dyn MessageSink> {
        self.me.clone()
    }

    fn local(&self) -> &LocalNamespace {
        self.cluster.local()
    }

    fn room_channel(&self, room: &str) -> String {
        format!("{}{room}#", self.channel)
    }

    fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.client.unsubscribe(self.channel.clone());
        self.client.unsubscribe(self.response_channel.clone());
        for room in std::mem::take(&mut *lock(&self.rooms)) {
            self.client.unsubscribe(self.room_channel(&room));
        }
        self.cluster.clear();
    }

    /// Node's `shouldUseASeparateNamespace`.
    fn has_own_channel(&self, room: &str) -> bool {
        match self.options.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !self.local().has_socket(room),
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Subscribes to `room`'s channel while a socket here is in it, and only then. The
    /// room's state is read again under the lock, so events arriving out of order still
    /// end in the right state.
    fn sync_room(&self, room: &Room) {
        if self.options.subscription_mode == SubscriptionMode::Static
            || self.closed.load(Ordering::Relaxed)
        {
            return;
        }
        let mut rooms = lock(&self.rooms);
        let want = self.local().has_room(room) && self.has_own_channel(room);
        if want && rooms.insert(room.clone()) {
            self.client.subscribe(self.room_channel(room), self.sink());
        } else if !want && rooms.remove(room) {
            self.client.unsubscribe(self.room_channel(room));
        }
    }

    /// Node's `computeChannel`: a broadcast without acks to one room goes to the room's
    /// channel in the dynamic modes (but to a room that looks like a socket id in the
    /// dynamic mode); everything else to the namespace's.
    fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        let [room] = opts.rooms.as_slice() else {
            return self.channel.clone();
        };
        let own = match self.options.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !looks_like_a_socket_id(room),
            SubscriptionMode::DynamicPrivate => true,
        };
        if own {
            self.room_channel(room)
        } else {
            self.channel.clone()
        }
    }

    /// A message as Node's `ShardedRedisAdapter.encode` writes it: JSON, or msgpack when
    /// its data holds binary values.
    fn encode(&self, ty: u8, data: Value, attachments: &[Bytes]) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(ty));
        m.insert("data".into(), data);
        m.insert("uid".into(), Value::String(self.uid.clone()));
        m.insert("nsp".into(), Value::String(self.local().name().to_owned()));
        let v = Value::Object(m);
        if attachments.is_empty() {
            wire::to_json(&v)
        } else {
            msgpack::to_vec(&v, attachments)
        }
    }

    fn publish(
        &self,
        channel: String,
        ty: u8,
        data: Value,
        attachments: &[Bytes],
    ) -> Result<(), AdapterError> {
        let payload = self.encode(ty, data, attachments);
        self.client.shared.publisher.spublish(channel, payload)
    }

    /// Answers go to the asking node's response channel.
    fn responder(&self, to: &str) -> Respond {
        let me = self.me.clone();
        let channel = format!("{}{to}#", self.channel);
        Arc::new(move |ty, data, attachments| {
            let Some(me) = me.upgrade() else { return };
            if let Err(e) = me.publish(channel.clone(), ty, data, &attachments) {
                tracing::debug!(error = %e, "iolite-redis: could not answer a request");
            }
        })
    }

    /// The nodes subscribed to the namespace's channel, this one included.
    async fn node_count(&self) -> Result<usize, AdapterError> {
        self.client
            .shared
            .publisher
            .shardnumsub(&self.channel)
            .await
            .map_err(AdapterError::Unavailable)
    }

    /// Publishes a request of type `ty` with `fields` and waits for the answers of every
    /// other node.
    async fn request(
        &self,
        ty: u8,
        fields: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, AdapterError> {
        let others = self.node_count().await?.saturating_sub(1);
        self.cluster
            .request(Expected::Count(others), timeout, |id| {
                let data = cluster::with_request_id(fields, id);
                self.publish(self.channel.clone(), ty, data, &[])
            })
            .await
    }
}

impl MessageSink for Inner {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let stats = &self.client.shared.publisher;
        let Ok(decoded) = wire::decode_any(payload) else {
            stats.count_malformed();
            tracing::debug!("iolite-redis: dropped a malformed sharded message");
            return;
        };
        let v = &decoded.value;
        let Some(ty) = v
            .get("type")
            .and_then(Value::as_u64)
            .and_then(|t| u8::try_from(t).ok())
        else {
            stats.count_malformed();
            return;
        };
        let uid = v.get("uid").and_then(Value::as_str).unwrap_or_default();
        if uid != self.uid {
            stats.count_received();
        }
        let msg = Message {
            ty,
            uid,
            data: v.get("data").unwrap_or(&Value::Null),
            attachments: &decoded.attachments,
        };
        if channel == self.response_channel {
            // Node's `onResponse`: answers only, from any node.
            if matches!(
                ty,
                kind::FETCH_SOCKETS_RESPONSE
                    | kind::SERVER_SIDE_EMIT_RESPONSE
                    | kind::BROADCAST_CLIENT_COUNT
                    | kind::BROADCAST_ACK
            ) {
                self.cluster
                    .on_message(msg, || self.responder(uid), |_, _| {});
            }
            return;
        }
        if uid == self.uid || v.get("nsp").and_then(Value::as_str) != Some(self.local().name()) {
            return;
        }
        let local = self.local();
        self.cluster.on_message(
            msg,
            || self.responder(uid),
            |packet, opts| {
                local.broadcast(&packet, opts);
            },
        );
    }
}

impl Adapter for ShardedAdapter {
    fn local(&self) -> &LocalNamespace {
        self.inner.local()
    }

    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let i = &self.inner;
        let published = if opts.flags.local {
            Ok(())
        } else {
            let data = json!({
                "packet": wire::packet_json(&packet),
                "opts": wire::broadcast_opts_json(&opts),
            });
            i.publish(
                i.broadcast_channel(&opts),
                kind::BROADCAST,
                data,
                &packet.attachments,
            )
        };
        // Delivered here whether or not the other nodes could be told.
        i.local().broadcast(&packet, &opts);
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
            // On the namespace's channel always: the server count, which tells how many
            // client counts to wait for, is of that channel's subscribers.
            let id = i.cluster.track_ack(&acks, opts.flags.timeout);
            let data = json!({
                "packet": wire::packet_json(&packet),
                "requestId": id,
                "opts": wire::broadcast_opts_json(&opts),
            });
            let channel = i.channel.clone();
            if let Err(e) = i.publish(channel, kind::BROADCAST, data, &packet.attachments) {
                // This node's clients are still asked: with Redis down the stream counts
                // one node and collects their answers.
                i.cluster.forget_ack(&id);
                tracing::debug!(error = %e, "iolite-redis: broadcast with acks stays on this node");
            }
        }
        i.local().broadcast_with_ack(&packet, &opts, &acks);
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
            let mut sockets = i.local().fetch_sockets(&opts);
            if opts.flags.local {
                return Ok(sockets);
            }
            let timeout = opts.flags.timeout.unwrap_or(i.options.requests_timeout);
            let mut fields = Map::new();
            fields.insert("opts".into(), wire::broadcast_opts_json(&opts));
            let answers = i.request(kind::FETCH_SOCKETS, fields, timeout).await?;
            sockets.extend(answers.iter().filter_map(wire::socket_from_json));
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local().add_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        let data = json!({
            "opts": wire::broadcast_opts_json(&opts),
            "rooms": cluster::rooms_json(&rooms),
        });
        i.publish(i.channel.clone(), kind::SOCKETS_JOIN, data, &[])
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<Room>) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local().del_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        let data = json!({
            "opts": wire::broadcast_opts_json(&opts),
            "rooms": cluster::rooms_json(&rooms),
        });
        i.publish(i.channel.clone(), kind::SOCKETS_LEAVE, data, &[])
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local().disconnect_sockets(&opts, close);
        if opts.flags.local {
            return Ok(());
        }
        let data = json!({"opts": wire::broadcast_opts_json(&opts), "close": close});
        i.publish(i.channel.clone(), kind::DISCONNECT_SOCKETS, data, &[])
    }

    fn server_side_emit(&self, event: String, args: Vec<Value>) -> Result<(), AdapterError> {
        let i = &self.inner;
        let data = json!({ "packet": cluster::server_side_packet(event, args) });
        i.publish(i.channel.clone(), kind::SERVER_SIDE_EMIT, data, &[])
    }

    fn server_side_emit_with_ack(
        &self,
        event: String,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Value>, AdapterError>> {
        Box::pin(async move {
            let mut fields = Map::new();
            fields.insert("packet".into(), cluster::server_side_packet(event, args));
            self.inner
                .request(kind::SERVER_SIDE_EMIT, fields, timeout)
                .await
        })
    }

    fn room_changed(&self, room: &Room, _created: bool) {
        self.inner.sync_room(room);
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_ids_as_node_tells_them() {
        assert!(looks_like_a_socket_id("AAAAAAAAAAAAAAAAAAAA"));
        assert!(!looks_like_a_socket_id("room"));
        // UTF-16 code units, as a JavaScript string's length.
        assert!(looks_like_a_socket_id(&"é".repeat(20)));
        assert!(!looks_like_a_socket_id(&"😀".repeat(20)));
    }

    #[test]
    fn modes_by_node_name() {
        for m in [
            SubscriptionMode::Static,
            SubscriptionMode::Dynamic,
            SubscriptionMode::DynamicPrivate,
        ] {
            assert_eq!(m.as_str().parse::<SubscriptionMode>(), Ok(m));
        }
        assert!("Dynamic".parse::<SubscriptionMode>().is_err());
        assert_eq!(SubscriptionMode::default(), SubscriptionMode::Dynamic);
    }
}
