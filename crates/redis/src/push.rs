//! Subscriptions: which adapter each channel's messages go to, and the subscribed
//! connection that speaks RESP3 (messages arrive as pushes): the one of sharded pub/sub
//! (`SSUBSCRIBE`) and the one of any adapter on a Redis Cluster, where the subscriptions
//! are spread over the nodes that own the channels.
//!
//! (Un)subscriptions go as commands, one channel each: the connection takes each
//! confirmation push as the reply of one command. After a disconnection it connects again,
//! with a doubling delay, and subscribes every registered channel again. The RESP2
//! subscriber of a single server (crate::client) shares the [`Registry`] and [`Command`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use redis::{PushInfo, PushKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::{next_delay, MessageSink, RedisOptions, RedisStats};
use crate::endpoint::Dial;

/// How often an idle connection is checked with a `PING` (a half-open connection would
/// otherwise go unnoticed until Redis is written to).
const PING_EVERY: Duration = Duration::from_secs(5);

/// What a subscription is to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A channel (`SUBSCRIBE`).
    Channel,
    /// A pattern of channels (`PSUBSCRIBE`).
    Pattern,
    /// A shard channel (`SSUBSCRIBE`, Redis 7).
    Shard,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    fn subscribe(self) -> &'static str {
        match self {
            Kind::Channel => "SUBSCRIBE",
            Kind::Pattern => "PSUBSCRIBE",
            Kind::Shard => "SSUBSCRIBE",
        }
    }

    fn unsubscribe(self) -> &'static str {
        match self {
            Kind::Channel => "UNSUBSCRIBE",
            Kind::Pattern => "PUNSUBSCRIBE",
            Kind::Shard => "SUNSUBSCRIBE",
        }
    }
}

/// What the subscribed connection is asked to do.
pub(crate) enum Command {
    Subscribe(Kind, String),
    Unsubscribe(Kind, String),
    /// Answered once the commands before it were done on a live connection.
    Barrier(oneshot::Sender<()>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a map insert or lookup: a panic cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which adapter each subscribed channel's (or pattern's) messages go to.
#[derive(Default)]
pub(crate) struct Registry {
    /// By [`Kind`], in its order.
    routes: [Mutex<HashMap<String, Weak<dyn MessageSink>>>; 3],
}

impl Registry {
    fn map(&self, kind: Kind) -> MutexGuard<'_, HashMap<String, Weak<dyn MessageSink>>> {
        lock(&self.routes[kind as usize])
    }

    pub(crate) fn insert(&self, kind: Kind, name: String, sink: Weak<dyn MessageSink>) {
        self.map(kind).insert(name, sink);
    }

    pub(crate) fn remove(&self, kind: Kind, name: &str) {
        self.map(kind).remove(name);
    }

    /// Every registered name of this kind.
    pub(crate) fn names(&self, kind: Kind) -> Vec<String> {
        self.map(kind).keys().cloned().collect()
    }

    pub(crate) fn sink(&self, kind: Kind, name: &str) -> Option<Arc<dyn MessageSink>> {
        self.map(kind).get(name)?.upgrade()
    }

    /// Hands a message push to its adapter; false when it is not a message.
    fn dispatch(&self, push: &PushInfo) -> bool {
        use redis::Value::BulkString;
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        let (kind, name, channel, payload) = match (&push.kind, push.data.as_slice()) {
            (PushKind::Message, [BulkString(c), BulkString(p), ..]) => (Kind::Channel, c, c, p),
            (PushKind::SMessage, [BulkString(c), BulkString(p), ..]) => (Kind::Shard, c, c, p),
            (PushKind::PMessage, [BulkString(pat), BulkString(c), BulkString(p), ..]) => {
                (Kind::Pattern, pat, c, p)
            }
            _ => return false,
        };
        if let (Some(name), Some(channel)) = (text(name), text(channel)) {
            if let Some(sink) = self.sink(kind, &name) {
                sink.on_message(&channel, payload);
            }
        }
        true
    }
}

/// Runs the subscribed connection until every handle of the client is gone.
pub(crate) async fn run(
    redis: crate::endpoint::Endpoint,
    o: RedisOptions,
    stats: Arc<RedisStats>,
    registry: Arc<Registry>,
    mut cmds: mpsc::UnboundedReceiver<Command>,
) {
    let mut delay = o.reconnect_delay;
    let mut connected_before = false;
    // `ready()` callers that asked while the connection was down.
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let (tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let dial = Dial {
            connection_timeout: o.connection_timeout,
            response_timeout: o.response_timeout,
            pushes: Some(tx),
        };
        let attempt = async {
            let mut conn = redis.connect(dial).await?;
            for kind in Kind::ALL {
                for name in registry.names(kind) {
                    // One at a time: on a cluster each may go to another node.
                    redis::cmd(kind.subscribe())
                        .arg(&name)
                        .exec_async(&mut conn)
                        .await?;
                }
            }
            Ok::<_, redis::RedisError>(conn)
        };
        let mut conn = match tokio::time::timeout(o.connection_timeout * 4, attempt).await {
            Ok(Ok(c)) => c,
            outcome => {
                let e = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => "subscribing timed out".to_owned(),
                };
                stats.count_connection_failure();
                if stats.set_subscriber_up(false) || !connected_before {
                    tracing::warn!(error = %e, "iolite-redis: cannot subscribe on Redis (RESP3 subscriptions need Redis 6, SSUBSCRIBE Redis 7); retrying");
                } else {
                    tracing::debug!(error = %e, "iolite-redis: subscriber still cannot connect");
                }
                let until = Instant::now() + delay;
                delay = next_delay(delay, &o);
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = closed(&mut cmds, &mut waiting) => return,
                }
                continue;
            }
        };
        delay = o.reconnect_delay;
        stats.set_subscriber_up(true);
        if connected_before {
            stats.count_resubscription();
            tracing::info!("iolite-redis: subscribed on Redis again");
        }
        connected_before = true;
        for tx in waiting.drain(..) {
            let _ = tx.send(());
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(p) if p.kind == PushKind::Disconnection => break,
                    Some(p) => {
                        // Confirmations of (un)subscriptions, and any other kind, are
                        // not messages.
                        registry.dispatch(&p);
                    }
                    None => break,
                },
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return };
                    let r = match cmd {
                        Command::Subscribe(kind, c) => {
                            redis::cmd(kind.subscribe()).arg(&c).exec_async(&mut conn).await
                        }
                        Command::Unsubscribe(kind, c) => {
                            redis::cmd(kind.unsubscribe()).arg(&c).exec_async(&mut conn).await
                        }
                        Command::Barrier(tx) => {
                            let _ = tx.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "iolite-redis: (un)subscription failed");
                        break;
                    }
                }
                _ = ping.tick() => {
                    // On a cluster, every master answers: one that is gone shows here.
                    if let Err(e) = redis::cmd("PING").exec_async(&mut conn).await {
                        tracing::debug!(error = %e, "iolite-redis: subscriber PING failed");
                        break;
                    }
                }
            }
        }
        stats.set_subscriber_up(false);
        tracing::warn!("iolite-redis: lost the Redis subscription; reconnecting");
    }
}

/// Resolves when every sender of `cmds` is gone. (Un)subscriptions that arrive meanwhile
/// are dropped: the registry has every channel for the next connection. Barriers wait in
/// `waiting` for it.
pub(crate) async fn closed(
    cmds: &mut mpsc::UnboundedReceiver<Command>,
    waiting: &mut Vec<oneshot::Sender<()>>,
) {
    loop {
        match cmds.recv().await {
            None => return,
            Some(Command::Barrier(tx)) => waiting.push(tx),
            Some(_) => {}
        }
    }
}
