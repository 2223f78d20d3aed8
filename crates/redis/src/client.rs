//! The two Redis connections of a node: one that publishes (and asks `PUBSUB NUMSUB`), one
//! that is subscribed. Both reconnect by themselves; the subscriber subscribes again to
//! every channel it had.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use iolite::adapter::{AdapterError, LocalNamespace};
use iolite::Adapter;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::adapter::{AdapterOptions, RedisAdapter};
use crate::endpoint::{Conn, Dial};
use crate::push::{Command as SubCommand, Kind, Registry};

/// Settings of the Redis connections.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// How long connecting may take.
    pub connection_timeout: Duration,
    /// How long a command may wait for its reply.
    pub response_timeout: Duration,
    /// The first wait before connecting again after a failure; it doubles up to
    /// `reconnect_delay_max`.
    pub reconnect_delay: Duration,
    /// The longest wait between two connection attempts.
    pub reconnect_delay_max: Duration,
    /// Messages waiting to be published at most; past that a publish fails at once.
    pub max_queued: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            connection_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            reconnect_delay: Duration::from_millis(100),
            reconnect_delay_max: Duration::from_secs(5),
            max_queued: 10_000,
        }
    }
}

/// Why a [`RedisClient`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RedisClientError {
    /// The URL is not a Redis URL (`redis://host:port/db`, `redis+unix:///path`).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
}

/// Counters of a node's Redis link, for metrics. Every count only grows.
#[derive(Debug)]
pub struct RedisStats {
    published: AtomicU64,
    publish_failures: AtomicU64,
    connection_failures: AtomicU64,
    resubscriptions: AtomicU64,
    received: AtomicU64,
    malformed: AtomicU64,
    publisher_up: AtomicBool,
    subscriber_up: AtomicBool,
}

impl Default for RedisStats {
    fn default() -> Self {
        Self {
            published: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            connection_failures: AtomicU64::new(0),
            resubscriptions: AtomicU64::new(0),
            received: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            // Until a connection attempt fails, publishes are queued for the first one.
            publisher_up: AtomicBool::new(true),
            subscriber_up: AtomicBool::new(false),
        }
    }
}

impl RedisStats {
    /// Messages published.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Messages (broadcasts, requests, responses) that could not be published.
    pub fn publish_failures(&self) -> u64 {
        self.publish_failures.load(Ordering::Relaxed)
    }

    /// Connection attempts that failed, of either connection.
    pub fn connection_failures(&self) -> u64 {
        self.connection_failures.load(Ordering::Relaxed)
    }

    /// All failures: [`publish_failures`](Self::publish_failures) plus
    /// [`connection_failures`](Self::connection_failures).
    pub fn failures(&self) -> u64 {
        self.publish_failures() + self.connection_failures()
    }

    /// Times the subscriber connection came back and subscribed again.
    pub fn resubscriptions(&self) -> u64 {
        self.resubscriptions.load(Ordering::Relaxed)
    }

    /// Messages received from the other nodes.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Received messages that could not be read (and were dropped).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Whether both connections are up, as far as the last attempt tells.
    pub fn is_connected(&self) -> bool {
        self.publisher_up.load(Ordering::Relaxed) && self.subscriber_up.load(Ordering::Relaxed)
    }

    pub(crate) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }

    fn count_publish_failures(&self, n: usize) {
        self.publish_failures.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// For a subscriber of another kind (the sharded one, the stream reader): records
    /// whether it is up, returning whether it was.
    pub(crate) fn set_subscriber_up(&self, up: bool) -> bool {
        self.subscriber_up.swap(up, Ordering::Relaxed)
    }

    pub(crate) fn count_connection_failure(&self) {
        self.connection_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_resubscription(&self) {
        self.resubscriptions.fetch_add(1, Ordering::Relaxed);
    }
}

/// For the streams client (crate::streams), whose writer and stream reader stand in for the
/// publisher and the subscriber.
impl RedisStats {
    pub(crate) fn count_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_publish_failure(&self) {
        self.count_publish_failures(1);
    }

    pub(crate) fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether the writing connection is up, returning whether it was.
    pub(crate) fn set_publisher_up(&self, up: bool) -> bool {
        self.publisher_up.swap(up, Ordering::Relaxed)
    }
}

/// Where the subscriber hands a message: the adapter of the namespace the channel is of.
pub(crate) trait MessageSink: Send + Sync {
    fn on_message(&self, channel: &str, payload: &[u8]);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a map insert or lookup: a panic cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The adapter a RESP2 message goes to.
fn sink_of(registry: &Registry, msg: &redis::Msg) -> Option<Arc<dyn MessageSink>> {
    if msg.from_pattern() {
        let pattern: String = msg.get_pattern().ok()?;
        registry.sink(Kind::Pattern, &pattern)
    } else {
        registry.sink(Kind::Channel, msg.get_channel_name())
    }
}

enum Job {
    Publish {
        channel: String,
        payload: Vec<u8>,
        /// `SPUBLISH` (sharded pub/sub) rather than `PUBLISH`.
        sharded: bool,
    },
    NumSub {
        channel: String,
        /// `PUBSUB SHARDNUMSUB` rather than `PUBSUB NUMSUB`.
        sharded: bool,
        reply: oneshot::Sender<Result<usize, String>>,
    },
    /// A `PING` behind everything queued before it: answered once those were sent.
    Flush {
        reply: oneshot::Sender<Result<(), String>>,
    },
}

struct Shared {
    redis: crate::endpoint::Endpoint,
    options: RedisOptions,
    stats: Arc<RedisStats>,
    registry: Arc<Registry>,
    jobs: mpsc::Sender<Job>,
    subs: mpsc::UnboundedSender<SubCommand>,
    /// The tasks' ends of the queues, until a tokio runtime is there to run them. Apart,
    /// because an emitter starts only the publisher.
    idle_jobs: Mutex<Option<mpsc::Receiver<Job>>>,
    idle_subs: Mutex<Option<mpsc::UnboundedReceiver<SubCommand>>>,
    /// Set by [`RedisClient::close`]: the tasks stop.
    stop: tokio::sync::watch::Sender<bool>,
}

/// A node's link to Redis: a publishing connection and a subscribed one, shared by the
/// adapters of all its namespaces (Node's `pubClient` / `subClient` pair). Cheap to clone.
///
/// Use one per [`SocketIo`](iolite::SocketIo): the node count is the number of subscribers
/// of a namespace's request channel, so two servers on one client would count as one.
///
/// Nothing connects until the first adapter is made; from then on both connections are
/// kept up (reconnecting with a doubling delay after a failure). While Redis cannot be
/// reached, publishes fail at once (counted in [`RedisStats`]) and the node keeps serving
/// its own clients.
#[derive(Clone)]
pub struct RedisClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient")
            .field("options", &self.shared.options)
            .field("stats", &self.shared.stats)
            .finish()
    }
}

impl RedisClient {
    /// A client of the Redis server at `url` (`redis://127.0.0.1:6379/`), default options.
    pub fn new(url: &str) -> Result<Self, RedisClientError> {
        Self::with_options(url, RedisOptions::default())
    }

    /// A client of the Redis server at `url`.
    pub fn with_options(url: &str, options: RedisOptions) -> Result<Self, RedisClientError> {
        let redis = crate::endpoint::Endpoint::parse(url, false)?;
        let (jobs, jobs_rx) = mpsc::channel(options.max_queued.max(1));
        let (subs, subs_rx) = mpsc::unbounded_channel();
        Ok(Self {
            shared: Arc::new(Shared {
                redis,
                options,
                stats: Arc::default(),
                registry: Arc::default(),
                jobs,
                subs,
                idle_jobs: Mutex::new(Some(jobs_rx)),
                idle_subs: Mutex::new(Some(subs_rx)),
                stop: tokio::sync::watch::channel(false).0,
            }),
        })
    }

    /// The counters of this link.
    pub fn stats(&self) -> &RedisStats {
        &self.shared.stats
    }

    /// The adapter factory for [`Builder::adapter`](iolite::Builder::adapter): each
    /// namespace gets a [`RedisAdapter`] with these options.
    pub fn adapter_factory(
        &self,
        options: AdapterOptions,
    ) -> impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static {
        let client = self.clone();
        move |local| {
            Arc::new(RedisAdapter::with_options(local, &client, options.clone()))
                as Arc<dyn Adapter>
        }
    }

    /// Resolves once the subscriber connection is up and has subscribed every channel of
    /// the adapters made so far (wrap it in a timeout: it waits as long as Redis is down).
    pub async fn ready(&self) {
        self.start();
        let (tx, rx) = oneshot::channel();
        if self.shared.subs.send(SubCommand::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Closes both connections for good: this node leaves the cluster (the other nodes
    /// stop counting it at once), its adapters go on serving its own clients, and every
    /// publish fails from now on. For a graceful shutdown.
    pub fn close(&self) {
        self.shared.stop.send_replace(true);
        let stats = &self.shared.stats;
        stats.publisher_up.store(false, Ordering::Relaxed);
        stats.subscriber_up.store(false, Ordering::Relaxed);
        // Tasks not started yet never will.
        lock(&self.shared.idle_jobs).take();
        lock(&self.shared.idle_subs).take();
    }

    /// Starts the connection tasks on the current tokio runtime, once. Without a runtime
    /// it logs an error and leaves them for a later call.
    pub(crate) fn start(&self) -> bool {
        self.start_publisher() && self.start_subscriber()
    }

    /// Starts the publishing connection only (what an emitter needs), once.
    pub(crate) fn start_publisher(&self) -> bool {
        let mut idle = lock(&self.shared.idle_jobs);
        let Some(jobs) = idle.take() else {
            return true;
        };
        let Some(rt) = runtime() else {
            *idle = Some(jobs);
            return false;
        };
        let s = &self.shared;
        self.spawn_task(
            &rt,
            publisher(s.redis.clone(), s.options.clone(), s.stats.clone(), jobs),
        );
        true
    }

    fn start_subscriber(&self) -> bool {
        let mut idle = lock(&self.shared.idle_subs);
        let Some(subs) = idle.take() else {
            return true;
        };
        let Some(rt) = runtime() else {
            *idle = Some(subs);
            return false;
        };
        let s = &self.shared;
        let (redis, o, stats, registry) = (
            s.redis.clone(),
            s.options.clone(),
            s.stats.clone(),
            s.registry.clone(),
        );
        if redis.is_cluster() {
            // A cluster's channels are spread over its nodes: RESP3 subscriptions that
            // follow them.
            self.spawn_task(&rt, crate::push::run(redis, o, stats, registry, subs));
        } else {
            self.spawn_task(&rt, subscriber(redis, o, stats, registry, subs));
        }
        true
    }

    /// Runs `task` on `rt` until it ends or [`close`](Self::close) is called.
    pub(crate) fn spawn_task(
        &self,
        rt: &tokio::runtime::Handle,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut stop = self.shared.stop.subscribe();
        rt.spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        });
    }

    /// Queues a message for publishing. Fails at once when the link is known to be down
    /// or the queue is full; a later failure is counted and logged by the publisher.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        self.enqueue(channel, payload, false)
    }

    /// [`publish`](Self::publish) with `SPUBLISH`, to a shard channel.
    pub(crate) fn spublish(&self, channel: String, payload: Vec<u8>) -> Result<(), AdapterError> {
        self.enqueue(channel, payload, true)
    }

    fn enqueue(
        &self,
        channel: String,
        payload: Vec<u8>,
        sharded: bool,
    ) -> Result<(), AdapterError> {
        let stats = &self.shared.stats;
        if !stats.publisher_up.load(Ordering::Relaxed) {
            stats.count_publish_failures(1);
            return Err(AdapterError::Unavailable("Redis is unreachable".into()));
        }
        let job = Job::Publish {
            channel,
            payload,
            sharded,
        };
        match self.shared.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                stats.count_publish_failures(1);
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the Redis publish queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the Redis publisher has stopped",
                };
                Err(AdapterError::Unavailable(why.into()))
            }
        }
    }

    /// `PUBSUB NUMSUB channel`: how many connections are subscribed to it.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, String> {
        self.count_subscribers(channel, false).await
    }

    /// `PUBSUB SHARDNUMSUB channel`: how many connections are subscribed to the shard
    /// channel.
    pub(crate) async fn shardnumsub(&self, channel: &str) -> Result<usize, String> {
        self.count_subscribers(channel, true).await
    }

    async fn count_subscribers(&self, channel: &str, sharded: bool) -> Result<usize, String> {
        if !self.shared.stats.publisher_up.load(Ordering::Relaxed) {
            return Err("Redis is unreachable".into());
        }
        let (reply, rx) = oneshot::channel();
        self.shared
            .jobs
            .try_send(Job::NumSub {
                channel: channel.to_owned(),
                sharded,
                reply,
            })
            .map_err(|_| "the Redis publish queue is full".to_owned())?;
        let o = &self.shared.options;
        // Bounded even when the tasks never started (no runtime yet).
        let limit = o.connection_timeout * 2 + o.response_timeout * 2;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the Redis publisher has stopped".into()),
            Err(_) => Err("PUBSUB NUMSUB timed out".into()),
        }
    }

    /// Resolves once everything queued before it was sent to Redis (a `PING` after it was
    /// answered); an error when that could not be done.
    pub(crate) async fn flush(&self) -> Result<(), String> {
        if !self.shared.stats.publisher_up.load(Ordering::Relaxed) {
            return Err("Redis is unreachable".into());
        }
        let (reply, rx) = oneshot::channel();
        self.shared
            .jobs
            .send(Job::Flush { reply })
            .await
            .map_err(|_| "the Redis publisher has stopped".to_owned())?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err("the Redis publisher has stopped".into()),
        }
    }

    pub(crate) fn count_malformed(&self) {
        self.shared.stats.count_malformed();
    }

    /// The counters, for a task that must not keep the client alive.
    pub(crate) fn stats_handle(&self) -> Arc<RedisStats> {
        self.shared.stats.clone()
    }

    pub(crate) fn options(&self) -> &RedisOptions {
        &self.shared.options
    }

    /// Whether [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        *self.shared.stop.borrow()
    }

    pub(crate) fn count_received(&self) {
        self.shared.stats.received.fetch_add(1, Ordering::Relaxed);
    }

    /// Routes `channels` and `pattern` to `sink` and subscribes them.
    pub(crate) fn register(&self, sink: Weak<dyn MessageSink>, channels: &[String], pattern: &str) {
        let r = &self.shared.registry;
        let subs = &self.shared.subs;
        for c in channels {
            r.insert(Kind::Channel, c.clone(), sink.clone());
            let _ = subs.send(SubCommand::Subscribe(Kind::Channel, c.clone()));
        }
        r.insert(Kind::Pattern, pattern.to_owned(), sink);
        let _ = subs.send(SubCommand::Subscribe(Kind::Pattern, pattern.to_owned()));
    }

    /// Stops routing `channels` and `pattern` and unsubscribes them.
    pub(crate) fn unregister(&self, channels: &[String], pattern: &str) {
        let r = &self.shared.registry;
        let subs = &self.shared.subs;
        for c in channels {
            r.remove(Kind::Channel, c);
            let _ = subs.send(SubCommand::Unsubscribe(Kind::Channel, c.clone()));
        }
        r.remove(Kind::Pattern, pattern);
        let _ = subs.send(SubCommand::Unsubscribe(Kind::Pattern, pattern.to_owned()));
    }
}

/// The current tokio runtime; without one, logs why nothing can start.
pub(crate) fn runtime() -> Option<tokio::runtime::Handle> {
    let rt = tokio::runtime::Handle::try_current().ok();
    if rt.is_none() {
        tracing::error!(
            "iolite-redis: no tokio runtime is running, so the Redis connections cannot \
             start; this node serves its own clients only until an adapter is made inside \
             a runtime"
        );
    }
    rt
}

pub(crate) fn next_delay(d: Duration, o: &RedisOptions) -> Duration {
    (d * 2).min(o.reconnect_delay_max).max(o.reconnect_delay)
}

/// The publishing connection: sends what is queued, in order, each batch as one pipeline.
async fn publisher(
    redis: crate::endpoint::Endpoint,
    o: RedisOptions,
    stats: Arc<RedisStats>,
    mut jobs: mpsc::Receiver<Job>,
) {
    let dial = || Dial {
        connection_timeout: o.connection_timeout,
        response_timeout: o.response_timeout,
        pushes: None,
    };
    let mut conn: Option<Conn> = None;
    let mut delay = o.reconnect_delay;
    loop {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match redis.connect(dial()).await {
                Ok(c) => {
                    if !stats.publisher_up.swap(true, Ordering::Relaxed) {
                        tracing::info!("iolite-redis: publisher connected to Redis again");
                    }
                    delay = o.reconnect_delay;
                    c
                }
                Err(e) => {
                    stats.connection_failures.fetch_add(1, Ordering::Relaxed);
                    if stats.publisher_up.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "iolite-redis: cannot connect to Redis to publish; retrying");
                    } else {
                        tracing::debug!(error = %e, "iolite-redis: publisher still cannot connect");
                    }
                    // Until the next attempt, what comes in fails at once.
                    let until = Instant::now() + delay;
                    delay = next_delay(delay, &o);
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => break,
                            job = jobs.recv() => match job {
                                Some(job) => fail(vec![job], &stats, "Redis is unreachable"),
                                None => return,
                            },
                        }
                    }
                    continue;
                }
            },
        };
        let Some(first) = jobs.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < 1024 {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        match run(&mut c, &batch).await {
            Ok(values) => {
                deliver(batch, values, &stats);
                conn = Some(c);
            }
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                // The connection died (Redis restarted, say): once more on a new one,
                // so the first message after an outage is not lost for nothing.
                tracing::debug!(error = %e, "iolite-redis: publish connection lost; reconnecting");
                match redis.connect(dial()).await {
                    Ok(mut c) => match run(&mut c, &batch).await {
                        Ok(values) => {
                            deliver(batch, values, &stats);
                            conn = Some(c);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "iolite-redis: publish failed");
                            fail(batch, &stats, "publish failed");
                        }
                    },
                    Err(e) => {
                        stats.connection_failures.fetch_add(1, Ordering::Relaxed);
                        if stats.publisher_up.swap(false, Ordering::Relaxed) {
                            tracing::warn!(error = %e, "iolite-redis: lost the Redis connection; messages to the other nodes are dropped until it is back");
                        }
                        fail(batch, &stats, "Redis is unreachable");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "iolite-redis: Redis refused a publish");
                fail(batch, &stats, "Redis refused the command");
                conn = Some(c);
            }
        }
    }
}

/// The command of a job.
fn command(job: &Job) -> redis::Cmd {
    match job {
        Job::Publish {
            channel,
            payload,
            sharded,
        } => {
            let mut cmd = redis::cmd(if *sharded { "SPUBLISH" } else { "PUBLISH" });
            cmd.arg(channel).arg(&payload[..]);
            cmd
        }
        Job::NumSub {
            channel, sharded, ..
        } => {
            let mut cmd = redis::cmd("PUBSUB");
            cmd.arg(if *sharded { "SHARDNUMSUB" } else { "NUMSUB" })
                .arg(channel);
            cmd
        }
        Job::Flush { .. } => redis::cmd("PING"),
    }
}

async fn run(c: &mut Conn, batch: &[Job]) -> redis::RedisResult<Vec<redis::Value>> {
    match c {
        Conn::Single(_) => {
            let mut pipe = redis::pipe();
            for job in batch {
                pipe.add_command(command(job));
            }
            pipe.query_async(c).await
        }
        Conn::Cluster(cluster) => {
            // A pipeline goes to one node; these go where their channels live (a count
            // to every node). Sent together, in order: one channel's publishes go to one
            // node, so they keep their order.
            let sends = batch.iter().map(|job| {
                let mut c = cluster.clone();
                let cmd = command(job);
                async move { cmd.query_async::<redis::Value>(&mut c).await }
            });
            futures_util::future::try_join_all(sends).await
        }
    }
}

/// The count of a `PUBSUB NUMSUB channel` reply: `[channel, n]` from a server, the counts
/// of every node summed into a map (`{channel: n}`) from a cluster.
fn numsub_count(v: &redis::Value) -> Option<usize> {
    use redis::Value;
    let n = match v {
        Value::Array(items) => items.get(1)?,
        Value::Map(pairs) if pairs.is_empty() => return Some(0),
        Value::Map(pairs) => &pairs.first()?.1,
        _ => return None,
    };
    match n {
        Value::Int(n) => usize::try_from(*n).ok(),
        other => redis::from_redis_value::<usize>(other).ok(),
    }
}

fn deliver(batch: Vec<Job>, values: Vec<redis::Value>, stats: &RedisStats) {
    let mut values = values.into_iter();
    for job in batch {
        let v = values.next();
        match job {
            Job::Publish { .. } => {
                stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Job::NumSub { reply, .. } => {
                let n = v
                    .as_ref()
                    .and_then(numsub_count)
                    .ok_or_else(|| "unexpected PUBSUB NUMSUB reply".to_owned());
                let _ = reply.send(n);
            }
            Job::Flush { reply } => {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

fn fail(batch: Vec<Job>, stats: &RedisStats, why: &str) {
    for job in batch {
        match job {
            Job::Publish { .. } => stats.count_publish_failures(1),
            Job::NumSub { reply, .. } => {
                let _ = reply.send(Err(why.to_owned()));
            }
            Job::Flush { reply } => {
                let _ = reply.send(Err(why.to_owned()));
            }
        }
    }
}

/// The subscribed connection: hands each message to the adapter of its channel; after a
/// disconnection, connects again and subscribes every registered channel again.
async fn subscriber(
    redis: crate::endpoint::Endpoint,
    o: RedisOptions,
    stats: Arc<RedisStats>,
    registry: Arc<Registry>,
    mut cmds: mpsc::UnboundedReceiver<SubCommand>,
) {
    let mut delay = o.reconnect_delay;
    let mut connected_before = false;
    // `ready()` callers that asked while the connection was down.
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let attempt = async {
            let pubsub = tokio::time::timeout(o.connection_timeout, redis.pubsub())
                .await
                .map_err(|_| "connection timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            let (mut sink, stream) = pubsub.split();
            let (channels, patterns) =
                (registry.names(Kind::Channel), registry.names(Kind::Pattern));
            let subscribe = async {
                if !channels.is_empty() {
                    sink.subscribe(&channels).await?;
                }
                for p in &patterns {
                    sink.psubscribe(p).await?;
                }
                Ok::<_, redis::RedisError>(())
            };
            tokio::time::timeout(o.response_timeout, subscribe)
                .await
                .map_err(|_| "subscribing timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((sink, stream))
        };
        let (mut sink, mut stream) = match attempt.await {
            Ok(pair) => pair,
            Err(e) => {
                stats.connection_failures.fetch_add(1, Ordering::Relaxed);
                if stats.subscriber_up.swap(false, Ordering::Relaxed) || !connected_before {
                    tracing::warn!(error = %e, "iolite-redis: cannot subscribe on Redis; retrying");
                } else {
                    tracing::debug!(error = %e, "iolite-redis: subscriber still cannot connect");
                }
                let until = Instant::now() + delay;
                delay = next_delay(delay, &o);
                // Commands wait in the queue (the registry has them all anyway), but
                // stop when every handle is gone.
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = crate::push::closed(&mut cmds, &mut waiting) => return,
                }
                continue;
            }
        };
        delay = o.reconnect_delay;
        stats.subscriber_up.store(true, Ordering::Relaxed);
        if connected_before {
            stats.resubscriptions.fetch_add(1, Ordering::Relaxed);
            tracing::info!("iolite-redis: subscribed on Redis again");
        }
        connected_before = true;
        for tx in waiting.drain(..) {
            let _ = tx.send(());
        }
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        if let Some(s) = sink_of(&registry, &msg) {
                            s.on_message(msg.get_channel_name(), msg.get_payload_bytes());
                        }
                    }
                    None => break,
                },
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return };
                    let r = match cmd {
                        SubCommand::Subscribe(Kind::Channel, c) => sink.subscribe(&c).await,
                        SubCommand::Unsubscribe(Kind::Channel, c) => sink.unsubscribe(&c).await,
                        SubCommand::Subscribe(Kind::Pattern, p) => sink.psubscribe(&p).await,
                        SubCommand::Unsubscribe(Kind::Pattern, p) => sink.punsubscribe(&p).await,
                        // This client's adapters subscribe to no shard channel.
                        SubCommand::Subscribe(Kind::Shard, _)
                        | SubCommand::Unsubscribe(Kind::Shard, _) => Ok(()),
                        SubCommand::Barrier(tx) => {
                            let _ = tx.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "iolite-redis: subscribe command failed");
                        break;
                    }
                }
            }
        }
        stats.subscriber_up.store(false, Ordering::Relaxed);
        tracing::warn!("iolite-redis: lost the Redis subscription; reconnecting");
    }
}
