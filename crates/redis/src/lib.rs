//! The Redis pub/sub adapter for iolite, wire-compatible with Node's
//! `@socket.io/redis-adapter` 8.x: iolite nodes and Node.js socket.io 4.8 nodes on one Redis
//! server form one cluster. Broadcasts (rooms, `except`, `volatile`, `local`), broadcasts
//! with acks, `fetch_sockets`, remote join / leave / disconnect, server-side emits (with
//! answers), `all_rooms` and the server count all cross between them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use iolite::adapter::Adapter;
//! use iolite_redis::{RedisAdapter, RedisClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisClient::new("redis://127.0.0.1:6379/")?;
//! let r = redis.clone();
//! let io = iolite::SocketIo::builder()
//!     .adapter(move |local| Arc::new(RedisAdapter::new(local, &r)) as Arc<dyn Adapter>)
//!     .build();
//! io.ns("/", || async {});
//! // Every node's clients get it.
//! io.emit("news", &"hello")?;
//! // For metrics: publishes that failed, reconnections.
//! let failures = redis.stats().failures();
//! # let _ = failures; Ok(()) }
//! ```
//!
//! [`RedisClient::adapter_factory`] is the same factory with [`AdapterOptions`] (channel
//! key, request timeout).
//!
//! [`Emitter`] publishes to such a cluster from a process without a server, byte for byte
//! as Node's `@socket.io/redis-emitter` 5.x; what Node's emitter publishes reaches iolite
//! nodes too.
//!
//! # How it works
//!
//! Each node has two Redis connections ([`RedisClient`]): one publishes, one is subscribed
//! to every namespace's channels (see [`wire`] for the channels and messages). A broadcast is
//! delivered on this node and published; the other nodes deliver it to their sockets. A
//! request (fetch, join, leave, disconnect, server-side emit, broadcast with acks) is
//! published on the namespace's request channel; the nodes act on it and answer on the
//! response channel. The node count is `PUBSUB NUMSUB` of the request channel: a request
//! waits for that many answers less one, at most [`AdapterOptions::requests_timeout`].
//!
//! # When Redis is down
//!
//! Nothing panics. Each node goes on serving its own clients: broadcasts are delivered
//! locally and return [`AdapterError::Unavailable`](iolite::AdapterError::Unavailable);
//! broadcasts with acks collect this node's answers (the server count falls back to 1);
//! `fetch_sockets`, `all_rooms` and server-side emits with answers fail with
//! `Unavailable`. Failures are logged (`tracing`, once per outage at `warn`) and counted in
//! [`RedisStats`]. Both connections reconnect with a doubling delay
//! ([`RedisOptions::reconnect_delay`]); the subscriber subscribes again to every channel.
//! Messages published while Redis was down are lost, not queued.
//!
//! # Not supported (yet)
//!
//! Connection state recovery across nodes with the pub/sub adapter (it does not store
//! sessions, as in Node): use [`StreamsAdapter`] ([`streams`], compatible with Node's
//! `@socket.io/redis-streams-adapter` 0.2.x) for that, a custom `parser` option (notepack
//! msgpack only), acks through the emitter (Node's has none either).
//!
//! # Sentinel
//!
//! Every client takes `redis+sentinel://host:26379[,host:26379...]/master-name[/db]`
//! ([`SENTINEL_SCHEME`]) instead of a server's URL: the master is asked of the sentinels at
//! every connection, so a failover is followed.
//!
//! # Redis Cluster
//!
//! Every client takes `redis+cluster://host:7000[,host:7001...]` ([`CLUSTER_SCHEME`]), some
//! of a Redis Cluster's nodes: commands go to the master of their key's (or channel's) slot,
//! shard subscriptions to the master that owns each channel, and node counts are summed over
//! the nodes.
//!
//! # Sharded pub/sub
//!
//! [`ShardedAdapter`] ([`sharded`], on a [`ShardedClient`]) is Node's
//! `createShardedAdapter`: the same cluster over Redis 7's `SSUBSCRIBE` / `SPUBLISH`, with
//! its channel prefix and subscription modes ([`ShardedOptions`]).

mod adapter;
mod client;
mod cluster;
mod emitter;
mod endpoint;
pub mod msgpack;
mod push;
pub mod sharded;
pub mod streams;
pub mod wire;

pub use adapter::{AdapterOptions, RedisAdapter};
pub use client::{RedisClient, RedisClientError, RedisOptions, RedisStats};
pub use emitter::{BroadcastOperator, Emitter, EmitterError, Message, EMITTER_UID};
pub use endpoint::{CLUSTER_SCHEME, SENTINEL_SCHEME};
pub use sharded::{ShardedAdapter, ShardedClient, ShardedOptions, SubscriptionMode};
pub use streams::{StreamsAdapter, StreamsClient, StreamsOptions};
