//! The Redis streams adapter, wire-compatible with Node's `@socket.io/redis-streams-adapter`
//! 0.2.x (built on socket.io-adapter's `ClusterAdapterWithHeartbeat`).
//!
//! Every node appends its messages to one stream (`socket.io`, trimmed with
//! `MAXLEN ~ 10000`) and reads it with `XREAD BLOCK` on a connection of its own. An entry has
//! the fields `uid` (16 hex characters), `nsp`, `type` (the message type as a decimal
//! string) and `data`: `JSON.stringify` of the payload, or base64 msgpack when the payload
//! holds binary values. The types are socket.io-adapter's `MessageType`:
//!
//! | type | data |
//! |---|---|
//! | 1 `INITIAL_HEARTBEAT`, 2 `HEARTBEAT`, 13 `ADAPTER_CLOSE` | none |
//! | 3 `BROADCAST` | `{packet, opts: {rooms, except, flags}, requestId?}` |
//! | 4 `SOCKETS_JOIN` / 5 `SOCKETS_LEAVE` | `{opts, rooms}` |
//! | 6 `DISCONNECT_SOCKETS` | `{opts, close}` |
//! | 7 `FETCH_SOCKETS` / 8 its response | `{opts, requestId}` / `{requestId, sockets}` |
//! | 9 `SERVER_SIDE_EMIT` / 10 its response | `{packet: [event, ...args], requestId?}` / `{requestId, packet}` |
//! | 11 `BROADCAST_CLIENT_COUNT` / 12 `BROADCAST_ACK` | `{requestId, clientCount}` / `{requestId, packet}` |
//!
//! The cluster's members are the uids seen in the stream: a node announces itself with
//! `INITIAL_HEARTBEAT` (the others answer `HEARTBEAT`), sends `HEARTBEAT` every
//! [`StreamsOptions::heartbeat_interval`], and is forgotten after
//! [`StreamsOptions::heartbeat_timeout`] of silence or its `ADAPTER_CLOSE`; a request waits
//! for the members it knew when it was sent, less those forgotten meanwhile.
//!
//! # Connection state recovery across nodes
//!
//! A broadcast's offset is its stream entry id, appended as the packet's last argument. A
//! disconnected socket's session `{sid, pid, rooms, data}` is stored as base64 msgpack under
//! `sio:session:<pid>` with `PX` the recovery window. A node restoring it takes it with
//! `GET`+`DEL` (one `MULTI`), checks the offset is still in the stream, and reads the
//! broadcasts after it with `XRANGE`, keeping those addressed to the session's rooms.
//!
//! This node's own broadcasts are delivered to its sockets as it reads them back from the
//! stream, so every node delivers in stream order; a restore registers the socket at a point
//! of that order (everything up to it replayed, everything after it live), which is what
//! makes every missed packet arrive once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use iolite::adapter::{
    AckCollector, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalNamespace,
    PersistedSession, RegisterSession, RestoredSession, SocketInfo,
};
use iolite::parser::{Packet, PacketType};
use iolite::Sid;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use crate::client::{RedisClientError, RedisStats};
use crate::cluster::{self, kind, Cluster, Expected, Message, Respond, EMITTER_UID};
use crate::endpoint::{Conn, Dial};
use crate::msgpack;
use crate::wire;

/// As Node's `RESTORE_SESSION_MAX_XRANGE_CALLS`: a stream growing faster than it is read
/// cannot keep a restore going forever.
const MAX_XRANGE_CALLS: usize = 100;

/// Options of [`StreamsClient`] (Node's `createAdapter(client, opts)`).
#[derive(Clone, Debug)]
pub struct StreamsOptions {
    /// The stream's key (`streamName`; default `socket.io`).
    pub stream_name: String,
    /// The stream is trimmed to about this many entries (`maxLen`; default 10 000): a
    /// client can recover only while its offset is still in it.
    pub max_len: usize,
    /// Entries read per `XREAD` (`readCount`; default 100).
    pub read_count: usize,
    /// How long one `XREAD` blocks (`BLOCK 5000` in Node).
    pub block_time: Duration,
    /// The prefix of session keys (`sessionKeyPrefix`; default `sio:session:`).
    pub session_key_prefix: String,
    /// How often a node says it is alive (`heartbeatInterval`; default 5 s).
    pub heartbeat_interval: Duration,
    /// Silence after which a node is taken for gone (`heartbeatTimeout`; default 10 s).
    pub heartbeat_timeout: Duration,
    /// How long `fetch_sockets` and server-side emits with answers wait (5 s, as Node).
    pub requests_timeout: Duration,
    /// How long connecting may take.
    pub connection_timeout: Duration,
    /// How long a command (other than the blocking read) may wait for its reply.
    pub response_timeout: Duration,
    /// The first wait before connecting again after a failure; it doubles up to
    /// `reconnect_delay_max`. While the writing connection waits, writes fail at once.
    pub reconnect_delay: Duration,
    /// The longest wait between two connection attempts.
    pub reconnect_delay_max: Duration,
}

impl Default for StreamsOptions {
    fn default() -> Self {
        Self {
            stream_name: "socket.io".into(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".into(),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            requests_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_delay: Duration::from_millis(200),
            reconnect_delay_max: Duration::from_secs(5),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are map operations and deliveries: a panic leaves no half state
    // that matters more than losing the node would.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stream entry id, `<ms>-<seq>`, comparable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct StreamId(u64, u64);

impl StreamId {
    fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return None;
        }
        Some(Self(a.parse().ok()?, b.parse().ok()?))
    }

    /// The first id after this one (exclusive ranges need Redis 6.2; this works before).
    fn next(self) -> String {
        match self.1.checked_add(1) {
            Some(s) => format!("{}-{s}", self.0),
            None => format!("{}-0", self.0.saturating_add(1)),
        }
    }
}

struct Entry {
    id: String,
    sid: StreamId,
    fields: HashMap<String, String>,
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The entries of an `XRANGE` reply (or of one stream of an `XREAD` reply).
fn entries(v: &redis::Value) -> Vec<Entry> {
    let redis::Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let redis::Value::Array(pair) = item else {
                return None;
            };
            let id = text(pair.first()?)?;
            let sid = StreamId::parse(&id)?;
            let mut fields = HashMap::new();
            if let Some(redis::Value::Array(kv)) = pair.get(1) {
                for c in kv.chunks(2) {
                    if let [k, v] = c {
                        if let (Some(k), Some(v)) = (text(k), text(v)) {
                            fields.insert(k, v);
                        }
                    }
                }
            }
            Some(Entry { id, sid, fields })
        })
        .collect()
}

/// The entries of an `XREAD` reply on one stream (`Nil` when the block timed out).
fn xread_entries(v: &redis::Value) -> Vec<Entry> {
    match v {
        redis::Value::Array(streams) => streams
            .iter()
            .flat_map(|s| match s {
                redis::Value::Array(pair) => pair.get(1).map(entries).unwrap_or_default(),
                _ => Vec::new(),
            })
            .collect(),
        redis::Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// A message's payload: JSON when it starts with `{`, else base64 msgpack.
fn decode_data(data: &str) -> Option<msgpack::Decoded> {
    if data.starts_with('{') {
        let value = serde_json::from_str(data).ok()?;
        return Some(msgpack::Decoded {
            value,
            attachments: Vec::new(),
        });
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    msgpack::decode(&bytes).ok()
}

/// A payload as Node writes it: msgpack (base64) when it holds binary values.
fn encode_data(value: &Value, attachments: &[Bytes]) -> String {
    if attachments.is_empty() {
        String::from_utf8_lossy(&wire::to_json(value)).into_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(msgpack::to_vec(value, attachments))
    }
}

enum Job {
    /// `XADD`; `failed` runs when it could not be written (a broadcast is then delivered
    /// here without an offset, as Node does).
    Add {
        fields: Vec<(&'static str, String)>,
        failed: Option<Box<dyn FnOnce() + Send>>,
    },
    /// `SET key value PX ms`.
    Set { key: String, value: String, px: u64 },
    /// Answers once every job queued before it has been written (or has failed).
    Flush(tokio::sync::oneshot::Sender<()>),
}

struct Shared {
    redis: crate::endpoint::Endpoint,
    options: StreamsOptions,
    adapters: Mutex<HashMap<String, Weak<Inner>>>,
    jobs: mpsc::UnboundedSender<Job>,
    /// The last entry delivered by the reader: a restore registers its socket under this
    /// lock, so no entry is delivered while it decides which ones to replay.
    delivered: Mutex<StreamId>,
    conn: tokio::sync::Mutex<Option<Conn>>,
    /// When the command connection may be tried again after a failure.
    backoff: Mutex<Backoff>,
    /// Set once the reader knows where the stream ends (and reads this node's entries).
    reading: watch::Sender<bool>,
    stats: RedisStats,
    closed: AtomicBool,
}

/// The command connection's wait between attempts, doubling while Redis stays away.
struct Backoff {
    retry_at: Option<Instant>,
    delay: Duration,
}

/// The Redis link of the streams adapters of one server: a command connection and a
/// reading connection (blocking `XREAD`), shared by its namespaces as Node's
/// `createAdapter` shares its client. Cheap to clone.
#[derive(Clone)]
pub struct StreamsClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsClient")
            .field("stream", &self.shared.options.stream_name)
            .finish_non_exhaustive()
    }
}

impl StreamsClient {
    /// A client of the Redis server at `url`, default options. Must be made inside a tokio
    /// runtime, where its reading and writing tasks run.
    pub fn new(url: &str) -> Result<Self, RedisClientError> {
        Self::with_options(url, StreamsOptions::default())
    }

    /// A client of the Redis server at `url`.
    pub fn with_options(url: &str, options: StreamsOptions) -> Result<Self, RedisClientError> {
        let redis = crate::endpoint::Endpoint::parse(url, false)?;
        let (jobs, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            redis,
            backoff: Mutex::new(Backoff {
                retry_at: None,
                delay: options.reconnect_delay,
            }),
            options,
            adapters: Mutex::default(),
            jobs,
            delivered: Mutex::default(),
            conn: tokio::sync::Mutex::new(None),
            reading: watch::channel(false).0,
            stats: RedisStats::default(),
            closed: AtomicBool::new(false),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let ready = shared.reading.subscribe();
                rt.spawn(reader(Arc::downgrade(&shared)));
                rt.spawn(writer(Arc::downgrade(&shared), rx, ready));
            }
            Err(_) => tracing::error!("iolite-redis: StreamsClient made outside a tokio runtime"),
        }
        Ok(Self { shared })
    }

    /// The adapter factory for [`Builder::adapter`](iolite::Builder::adapter): each
    /// namespace gets a [`StreamsAdapter`].
    pub fn adapter_factory(
        &self,
    ) -> impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static {
        let c = self.clone();
        move |local| Arc::new(StreamsAdapter::new(local, &c)) as Arc<dyn Adapter>
    }

    /// Waits until everything queued so far (broadcasts, and the sessions of sockets that
    /// just disconnected) has been written to Redis or has failed. A server calls it after
    /// closing its connections and before exiting, so recovery sessions are not lost.
    pub async fn flush(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shared.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops reading the stream (the adapters' messages already queued are still written).
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.stats.set_subscriber_up(false);
    }

    /// The counters of this link, as [`RedisClient::stats`](crate::RedisClient::stats):
    /// `published` counts stream entries written; `publish_failures` the entries and
    /// recovery sessions that could not be written; `received` the entries of other nodes
    /// read; `resubscriptions` the times the reader connected again after losing Redis.
    /// [`RedisStats::is_connected`] is whether both the reading and the writing connection
    /// are up, as far as their last attempt tells.
    pub fn stats(&self) -> &RedisStats {
        &self.shared.stats
    }

    /// Resolves once the reader has connected and knows where the stream ends, so this
    /// node's broadcasts and the other nodes' from then on reach it (wrap it in a timeout:
    /// it waits as long as Redis is down at start).
    pub async fn ready(&self) {
        let mut rx = self.shared.reading.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
}

impl Shared {
    fn config(&self, response_timeout: Duration) -> Dial {
        Dial {
            connection_timeout: self.options.connection_timeout,
            response_timeout,
            pushes: None,
        }
    }

    /// Runs a command on the command connection, connecting first if needed.
    async fn query(&self, cmd: &redis::Cmd) -> Result<redis::Value, AdapterError> {
        let mut c = self.command_conn().await?;
        match cmd.query_async(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_unrecoverable_error() || e.is_timeout() || e.is_io_error() {
                    *self.conn.lock().await = None;
                    self.writer_down(&e.to_string());
                }
                Err(AdapterError::Unavailable(e.to_string()))
            }
        }
    }

    async fn pipeline(&self, pipe: &redis::Pipeline) -> Result<Vec<redis::Value>, AdapterError> {
        let mut c = self.command_conn().await?;
        match pipe.query_async(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                *self.conn.lock().await = None;
                self.writer_down(&e.to_string());
                Err(AdapterError::Unavailable(e.to_string()))
            }
        }
    }

    /// The command connection, connecting if there is none. After a failed attempt the
    /// next waits out the backoff, and commands fail at once meanwhile: the writer does not
    /// hold this node's broadcasts back (they are delivered here when they cannot be
    /// written) while Redis is away.
    async fn command_conn(&self) -> Result<Conn, AdapterError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        if lock(&self.backoff)
            .retry_at
            .is_some_and(|at| Instant::now() < at)
        {
            return Err(AdapterError::Unavailable(
                "Redis is unreachable, waiting to reconnect".into(),
            ));
        }
        match self
            .redis
            .connect(self.config(self.options.response_timeout))
            .await
        {
            Ok(c) => {
                *lock(&self.backoff) = Backoff {
                    retry_at: None,
                    delay: self.options.reconnect_delay,
                };
                if !self.stats.set_publisher_up(true) {
                    tracing::info!("iolite-redis: stream writer connected to Redis again");
                }
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                self.stats.count_connection_failure();
                let mut b = lock(&self.backoff);
                b.retry_at = Some(Instant::now() + b.delay);
                b.delay = (b.delay * 2).min(self.options.reconnect_delay_max);
                drop(b);
                self.writer_down(&e.to_string());
                Err(AdapterError::Unavailable(e.to_string()))
            }
        }
    }

    /// The reading connection was lost or could not be made (logged once per outage).
    fn reader_down(&self, why: &str) {
        if self.stats.set_subscriber_up(false) {
            tracing::warn!(error = %why, "iolite-redis: stream reader lost Redis, reconnecting");
        } else {
            tracing::debug!(error = %why, "iolite-redis: stream reader cannot reach Redis");
        }
    }

    /// The writing connection was lost or could not be made (logged once per outage).
    fn writer_down(&self, why: &str) {
        if self.stats.set_publisher_up(false) {
            tracing::warn!(error = %why, "iolite-redis: stream writer lost Redis, reconnecting");
        }
    }

    fn dispatch(&self, entry: &Entry) {
        let Some(nsp) = entry.fields.get("nsp") else {
            return;
        };
        let adapter = lock(&self.adapters).get(nsp).and_then(Weak::upgrade);
        if let Some(a) = adapter {
            a.on_entry(entry);
        }
    }
}

/// Writes the jobs in order, once the reader knows where the stream ends (so it reads
/// back this node's own broadcasts).
async fn writer(
    shared: Weak<Shared>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    mut ready: watch::Receiver<bool>,
) {
    // Redis down at start: write (and fail, delivering locally) rather than hold
    // broadcasts back.
    let wait = shared
        .upgrade()
        .map(|s| s.options.connection_timeout * 2)
        .unwrap_or_default();
    let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
    while let Some(job) = jobs.recv().await {
        let Some(s) = shared.upgrade() else {
            return;
        };
        match job {
            Job::Add { fields, failed } => {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&s.options.stream_name)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(s.options.max_len)
                    .arg("*");
                for (k, v) in &fields {
                    cmd.arg(*k).arg(v);
                }
                match s.query(&cmd).await {
                    Ok(_) => s.stats.count_published(),
                    Err(e) => {
                        tracing::debug!(error = %e, "iolite-redis: XADD failed");
                        s.stats.count_publish_failure();
                        if let Some(f) = failed {
                            f();
                        }
                    }
                }
            }
            Job::Set { key, value, px } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(&value).arg("PX").arg(px.max(1));
                if let Err(e) = s.query(&cmd).await {
                    tracing::warn!(error = %e, "iolite-redis: could not store a session");
                    s.stats.count_publish_failure();
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Reads the stream on a connection of its own and hands each entry to its namespace's
/// adapter, in order. Connects again after a failure, with a doubling wait.
async fn reader(shared: Weak<Shared>) {
    let mut offset: Option<String> = None;
    let mut conn: Option<Conn> = None;
    // The wait after the last failure (zero: the last read went through).
    let mut delay = Duration::ZERO;
    let mut connected_before = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        if s.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => {
                let config = s.config(s.options.block_time + s.options.response_timeout);
                match s.redis.connect(config).await {
                    Ok(c) => {
                        if !s.stats.set_subscriber_up(true) && connected_before {
                            s.stats.count_resubscription();
                            tracing::info!("iolite-redis: stream reader connected to Redis again");
                            // The writer need not wait out its backoff: Redis is back.
                            lock(&s.backoff).retry_at = None;
                        }
                        connected_before = true;
                        c
                    }
                    Err(e) => {
                        s.stats.count_connection_failure();
                        s.reader_down(&e.to_string());
                        delay = next_delay(delay, &s.options);
                        drop(s);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
        };
        let from = match &offset {
            Some(o) => o.clone(),
            None => {
                // Where the stream ends now: this node reads what is added from here on.
                let last: Result<redis::Value, _> = redis::cmd("XREVRANGE")
                    .arg(&s.options.stream_name)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut c)
                    .await;
                match last {
                    Ok(v) => {
                        let id = entries(&v)
                            .first()
                            .map(|e| e.id.clone())
                            .unwrap_or_else(|| "0-0".into());
                        *lock(&s.delivered) = StreamId::parse(&id).unwrap_or_default();
                        offset = Some(id.clone());
                        s.reading.send_replace(true);
                        delay = Duration::ZERO;
                        id
                    }
                    Err(e) => {
                        s.reader_down(&e.to_string());
                        delay = next_delay(delay, &s.options);
                        drop(s);
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
        };
        let block = u64::try_from(s.options.block_time.as_millis()).unwrap_or(5000);
        let read_count = s.options.read_count;
        let name = s.options.stream_name.clone();
        // Not holding the client while blocked: dropping it ends this task.
        drop(s);
        let reply: Result<redis::Value, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(read_count)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&name)
            .arg(&from)
            .query_async(&mut c)
            .await;
        let Some(s) = shared.upgrade() else { return };
        match reply {
            Ok(v) => {
                let batch = xread_entries(&v);
                let mut delivered = lock(&s.delivered);
                for e in &batch {
                    s.dispatch(e);
                    *delivered = e.sid;
                    offset = Some(e.id.clone());
                }
                drop(delivered);
                conn = Some(c);
                delay = Duration::ZERO;
            }
            Err(e) => {
                s.reader_down(&e.to_string());
                delay = next_delay(delay, &s.options);
                drop(s);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The reader's wait after another failure: the first delay, then twice the last one.
fn next_delay(last: Duration, o: &StreamsOptions) -> Duration {
    if last.is_zero() {
        o.reconnect_delay
    } else {
        (last * 2).min(o.reconnect_delay_max)
    }
}

/// The streams adapter of one namespace, wire-compatible with Node's
/// `@socket.io/redis-streams-adapter` 0.2.x: see the [module docs](self).
pub struct StreamsAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    /// The requests this node waits answers for, and what it does with the other nodes'
    /// messages (socket.io-adapter's `ClusterAdapter`).
    cluster: Cluster,
    local: LocalNamespace,
    shared: Arc<Shared>,
    uid: String,
    /// Other nodes and when each was last heard from.
    nodes: Mutex<HashMap<String, Instant>>,
    closed: AtomicBool,
    timers: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl StreamsAdapter {
    /// The adapter of namespace `local` on `client`; announces this node to the others.
    pub fn new(local: LocalNamespace, client: &StreamsClient) -> Self {
        let cluster = Cluster::new(local.clone(), client.shared.options.requests_timeout);
        let inner = Arc::new(Inner {
            cluster,
            local,
            shared: client.shared.clone(),
            uid: cluster::random_id(),
            nodes: Mutex::default(),
            closed: AtomicBool::new(false),
            timers: Mutex::default(),
        });
        lock(&client.shared.adapters).insert(inner.local.name().to_owned(), Arc::downgrade(&inner));
        let _ = inner.publish(kind::INITIAL_HEARTBEAT, None, None);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&inner);
            let h = rt.spawn(timers(weak, client.shared.options.clone()));
            *lock(&inner.timers) = Some(h);
        }
        Self { inner }
    }

    /// This node's id in the cluster (for this namespace), as its messages carry it.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }
}

impl Drop for StreamsAdapter {
    fn drop(&mut self) {
        self.inner.close();
    }
}

/// Heartbeats, and forgetting silent nodes (checked every second, as Node does).
async fn timers(inner: Weak<Inner>, o: StreamsOptions) {
    let tick = Duration::from_secs(1).min(o.heartbeat_interval);
    let mut last_beat = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let Some(i) = inner.upgrade() else { return };
        if last_beat.elapsed() >= o.heartbeat_interval {
            last_beat = Instant::now();
            let _ = i.publish(kind::HEARTBEAT, None, None);
        }
        let gone: Vec<String> = lock(&i.nodes)
            .iter()
            .filter(|(_, seen)| seen.elapsed() > o.heartbeat_timeout)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in gone {
            tracing::debug!(node = %uid, "iolite-redis: node seems down");
            i.remove_node(&uid);
        }
    }
}

impl Inner {
    fn close(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let _ = self.publish(kind::ADAPTER_CLOSE, None, None);
        if let Some(h) = lock(&self.timers).take() {
            h.abort();
        }
        let mut adapters = lock(&self.shared.adapters);
        if adapters
            .get(self.local.name())
            .is_some_and(|w| std::ptr::eq(w.as_ptr(), self))
        {
            adapters.remove(self.local.name());
        }
        drop(adapters);
        self.cluster.clear();
    }

    fn publish(
        &self,
        ty: u8,
        data: Option<(Value, Vec<Bytes>)>,
        failed: Option<Box<dyn FnOnce() + Send>>,
    ) -> Result<(), AdapterError> {
        let mut fields = vec![
            ("uid", self.uid.clone()),
            ("nsp", self.local.name().to_owned()),
            ("type", ty.to_string()),
        ];
        if let Some((v, atts)) = data {
            fields.push(("data", encode_data(&v, &atts)));
        }
        self.shared
            .jobs
            .send(Job::Add { fields, failed })
            .map_err(|_| AdapterError::Unavailable("the streams client is gone".into()))
    }

    fn remove_node(&self, uid: &str) {
        lock(&self.nodes).remove(uid);
        self.cluster.remove_node(uid);
    }

    /// Sends a request to every known node and waits for each one's answer data.
    async fn request(
        &self,
        ty: u8,
        data: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, AdapterError> {
        let missing: HashSet<String> = lock(&self.nodes).keys().cloned().collect();
        self.cluster
            .request(Expected::Nodes(missing), timeout, |id| {
                let data = cluster::with_request_id(data, id);
                self.publish(ty, Some((data, Vec::new())), None)
            })
            .await
    }

    /// Answers go to the stream, as every message (the asking node keeps those to it).
    fn responder(&self) -> Respond {
        let jobs = self.shared.jobs.clone();
        let (me, nsp) = (self.uid.clone(), self.local.name().to_owned());
        Arc::new(move |ty, data, attachments| {
            let fields = vec![
                ("uid", me.clone()),
                ("nsp", nsp.clone()),
                ("type", ty.to_string()),
                ("data", encode_data(&data, &attachments)),
            ];
            let job = Job::Add {
                fields,
                failed: None,
            };
            if jobs.send(job).is_err() {
                tracing::debug!(
                    "iolite-redis: could not answer a request, the streams client is gone"
                );
            }
        })
    }

    fn deliver(&self, mut packet: Packet, opts: &BroadcastOptions, offset: &str) {
        let recoverable = self.local.recovery().is_some()
            && matches!(packet.kind, PacketType::Event | PacketType::BinaryEvent)
            && packet.id.is_none()
            && !opts.flags.volatile;
        if recoverable {
            if let Value::Array(a) = &mut packet.data {
                a.push(Value::String(offset.to_owned()));
            }
        }
        self.local.broadcast(&packet, opts);
    }

    fn on_entry(&self, entry: &Entry) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let f = &entry.fields;
        let uid = f.get("uid").map(String::as_str).unwrap_or_default();
        let stats = &self.shared.stats;
        if uid != self.uid {
            stats.count_received();
        }
        let Some(ty) = f.get("type").and_then(|t| t.parse::<u8>().ok()) else {
            stats.count_malformed();
            return;
        };
        // As Node: an entry whose data cannot be read is dropped.
        let (data, atts) = match f.get("data").map(|d| decode_data(d)) {
            Some(Some(d)) => (d.value, d.attachments),
            Some(None) => {
                stats.count_malformed();
                return;
            }
            None => (Value::Null, Vec::new()),
        };
        if uid == self.uid {
            // Our own broadcasts are delivered here as the stream orders them.
            if ty == kind::BROADCAST && data.get("requestId").is_none() {
                if let Ok(p) = wire::packet_from_json(&data["packet"], &atts) {
                    self.deliver(p, &wire::opts_from_json(data.get("opts")), &entry.id);
                }
            }
            return;
        }
        if !uid.is_empty() && uid != EMITTER_UID {
            lock(&self.nodes).insert(uid.to_owned(), Instant::now());
        }
        match ty {
            kind::INITIAL_HEARTBEAT => {
                let _ = self.publish(kind::HEARTBEAT, None, None);
            }
            kind::HEARTBEAT => {}
            kind::ADAPTER_CLOSE => self.remove_node(uid),
            _ => {
                let msg = Message {
                    ty,
                    uid,
                    data: &data,
                    attachments: &atts,
                };
                self.cluster.on_message(
                    msg,
                    || self.responder(),
                    |packet, opts| {
                        self.deliver(packet, opts, &entry.id);
                    },
                );
            }
        }
    }

    async fn restore(
        &self,
        pid: &str,
        offset: &str,
        register: RegisterSession<'_>,
    ) -> Result<bool, AdapterError> {
        let Some(start) = StreamId::parse(offset) else {
            return Ok(false);
        };
        let name = &self.shared.options.stream_name;
        let key = format!("{}{pid}", self.shared.options.session_key_prefix);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("DEL")
            .arg(&key)
            .ignore();
        let mut check = redis::cmd("XRANGE");
        check.arg(name).arg(offset).arg(offset);
        let (got, exists) = tokio::join!(self.shared.pipeline(&pipe), self.shared.query(&check));
        let got = got?;
        let exists = exists?;
        let raw = got.first().and_then(text);
        if raw.is_none() || entries(&exists).is_empty() {
            return Ok(false);
        }
        let Some(session) = raw.as_deref().and_then(decode_session) else {
            return Ok(false);
        };
        let mut fetched: Vec<Entry> = Vec::new();
        let mut cursor = start;
        for _ in 0..MAX_XRANGE_CALLS {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(name).arg(cursor.next()).arg("+");
            let batch = entries(&self.shared.query(&cmd).await?);
            if let Some(last) = batch.last() {
                cursor = last.sid;
            }
            let more = !batch.is_empty();
            fetched.extend(batch);
            let delivered = lock(&self.shared.delivered);
            if *delivered <= cursor || !more {
                // Entries up to `delivered` went out before this socket existed: replayed.
                // Those after it go out live once it is registered.
                let upto = *delivered;
                let missed = fetched
                    .iter()
                    .filter(|e| e.sid <= upto)
                    .filter_map(|e| self.missed_packet(e, &session.rooms))
                    .collect();
                register(RestoredSession { session, missed });
                drop(delivered);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The packet of a stored broadcast to this namespace that a socket in `rooms` got.
    fn missed_packet(&self, e: &Entry, rooms: &[iolite::Room]) -> Option<Packet> {
        let f = &e.fields;
        if f.get("nsp").map(String::as_str) != Some(self.local.name())
            || f.get("type").map(String::as_str) != Some("3")
        {
            return None;
        }
        let d = decode_data(f.get("data")?)?;
        if d.value.get("requestId").is_some() {
            return None;
        }
        let opts = wire::opts_from_json(d.value.get("opts"));
        if opts.flags.volatile || !opts.matches(rooms) {
            return None;
        }
        let mut p = wire::packet_from_json(&d.value["packet"], &d.attachments).ok()?;
        if p.id.is_some() || !matches!(p.kind, PacketType::Event | PacketType::BinaryEvent) {
            return None;
        }
        if let Value::Array(a) = &mut p.data {
            a.push(Value::String(e.id.clone()));
        }
        Some(p)
    }
}

fn encode_session(s: &PersistedSession) -> String {
    let v = json!({
        "sid": s.sid.as_str(),
        "pid": s.pid.as_str(),
        "rooms": s.rooms.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "data": s.data,
    });
    base64::engine::general_purpose::STANDARD.encode(msgpack::to_vec(&v, &[]))
}

fn decode_session(raw: &str) -> Option<PersistedSession> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let d = msgpack::decode(&bytes).ok()?;
    let v = d.value;
    Some(PersistedSession {
        sid: Sid::parse(v.get("sid")?.as_str()?).ok()?,
        pid: Sid::parse(v.get("pid")?.as_str()?).ok()?,
        rooms: v
            .get("rooms")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(iolite::Room::from)
                    .collect()
            })
            .unwrap_or_default(),
        data: v.get("data").cloned().unwrap_or(Value::Null),
    })
}

impl Adapter for StreamsAdapter {
    fn local(&self) -> &LocalNamespace {
        &self.inner.local
    }

    fn broadcast(&self, packet: Packet, opts: BroadcastOptions) -> Result<(), AdapterError> {
        let i = &self.inner;
        if opts.flags.local {
            i.local.broadcast(&packet, &opts);
            return Ok(());
        }
        let data = json!({
            "packet": wire::packet_json(&packet),
            "opts": wire::broadcast_opts_json(&opts),
        });
        let (local, p, o) = (i.local.clone(), packet.clone(), opts.clone());
        let failed: Box<dyn FnOnce() + Send> = Box::new(move || {
            local.broadcast(&p, &o);
        });
        // Delivered here when read back from the stream (or at once if it cannot be written).
        let r = i.publish(
            kind::BROADCAST,
            Some((data, packet.attachments.clone())),
            Some(failed),
        );
        if r.is_err() {
            i.local.broadcast(&packet, &opts);
        }
        r
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        acks: AckCollector,
    ) -> Result<(), AdapterError> {
        let i = &self.inner;
        if !opts.flags.local {
            let id = i.cluster.track_ack(&acks, opts.flags.timeout);
            let data = json!({
                "packet": wire::packet_json(&packet),
                "requestId": id,
                "opts": wire::broadcast_opts_json(&opts),
            });
            let published = i.publish(
                kind::BROADCAST,
                Some((data, packet.attachments.clone())),
                None,
            );
            if published.is_err() {
                i.cluster.forget_ack(&id);
            }
        }
        i.local.broadcast_with_ack(&packet, &opts, &acks);
        Ok(())
    }

    fn server_count(&self) -> BoxFuture<'_, usize> {
        Box::pin(async move { 1 + lock(&self.inner.nodes).len() })
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
            let timeout = opts
                .flags
                .timeout
                .unwrap_or(i.shared.options.requests_timeout);
            let mut data = Map::new();
            data.insert("opts".into(), wire::broadcast_opts_json(&opts));
            let answers = i.request(kind::FETCH_SOCKETS, data, timeout).await?;
            sockets.extend(answers.iter().filter_map(wire::socket_from_json));
            Ok(sockets)
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<iolite::Room>,
    ) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.add_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        let data =
            json!({"opts": wire::broadcast_opts_json(&opts), "rooms": cluster::rooms_json(&rooms)});
        i.publish(kind::SOCKETS_JOIN, Some((data, Vec::new())), None)
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<iolite::Room>,
    ) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.del_sockets(&opts, &rooms);
        if opts.flags.local {
            return Ok(());
        }
        let data =
            json!({"opts": wire::broadcast_opts_json(&opts), "rooms": cluster::rooms_json(&rooms)});
        i.publish(kind::SOCKETS_LEAVE, Some((data, Vec::new())), None)
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) -> Result<(), AdapterError> {
        let i = &self.inner;
        i.local.disconnect_sockets(&opts, close);
        if opts.flags.local {
            return Ok(());
        }
        let data = json!({"opts": wire::broadcast_opts_json(&opts), "close": close});
        i.publish(kind::DISCONNECT_SOCKETS, Some((data, Vec::new())), None)
    }

    fn server_side_emit(&self, event: String, args: Vec<Value>) -> Result<(), AdapterError> {
        let mut packet = vec![Value::String(event)];
        packet.extend(args);
        let data = json!({ "packet": packet });
        self.inner
            .publish(kind::SERVER_SIDE_EMIT, Some((data, Vec::new())), None)
    }

    fn server_side_emit_with_ack(
        &self,
        event: String,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<Value>, AdapterError>> {
        Box::pin(async move {
            let mut packet = vec![Value::String(event)];
            packet.extend(args);
            let mut data = Map::new();
            data.insert("packet".into(), Value::Array(packet));
            self.inner
                .request(kind::SERVER_SIDE_EMIT, data, timeout)
                .await
        })
    }

    fn persist_session(&self, session: PersistedSession) {
        let i = &self.inner;
        let Some(r) = i.local.recovery() else { return };
        let px = u64::try_from(r.max_disconnection_duration.as_millis()).unwrap_or(u64::MAX);
        let key = format!("{}{}", i.shared.options.session_key_prefix, session.pid);
        let value = encode_session(&session);
        if i.shared.jobs.send(Job::Set { key, value, px }).is_err() {
            tracing::warn!("iolite-redis: session not stored, the streams client is gone");
        }
    }

    fn restore_session<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
        register: RegisterSession<'a>,
    ) -> BoxFuture<'a, Result<bool, AdapterError>> {
        Box::pin(self.inner.restore(pid, offset, register))
    }

    fn close(&self) {
        self.inner.close();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_and_step() {
        let a = StreamId::parse("1700000000000-5").unwrap();
        assert_eq!(a, StreamId(1_700_000_000_000, 5));
        assert!(StreamId::parse("1-2") < StreamId::parse("1-10"));
        assert_eq!(a.next(), "1700000000000-6");
        for bad in ["", "1", "1-", "-1", "a-1", "1-2-3", "1-x", "$"] {
            assert_eq!(StreamId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn sessions_round_trip() {
        let s = PersistedSession {
            sid: Sid::generate().unwrap(),
            pid: Sid::generate().unwrap(),
            rooms: vec!["a".into(), "b".into()],
            data: json!({"n": 1, "x": [true, null, "s"]}),
        };
        assert_eq!(decode_session(&encode_session(&s)), Some(s));
        assert_eq!(decode_session("not base64!"), None);
        assert_eq!(decode_session(""), None);
    }

    #[test]
    fn payloads_json_or_msgpack() {
        let v = json!({"a": [1, "x"]});
        let s = encode_data(&v, &[]);
        assert!(s.starts_with('{'));
        assert_eq!(decode_data(&s).map(|d| d.value), Some(v));
        let bin = json!({"p": {"_placeholder": true, "num": 0}});
        let s = encode_data(&bin, &[Bytes::from_static(b"\x01\x02")]);
        assert!(!s.starts_with('{'));
        let d = decode_data(&s);
        assert_eq!(
            d.map(|d| d.attachments),
            Some(vec![Bytes::from_static(b"\x01\x02")])
        );
        assert!(decode_data("%%%").is_none());
        assert!(decode_data("{not json").is_none());
    }
}
