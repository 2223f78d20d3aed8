//! The connection of a node that is subscribed to shard channels (`SSUBSCRIBE`).
//!
//! redis-rs wraps sharded subscriptions for Redis Cluster only, so this is a plain RESP3
//! multiplexed connection: `SSUBSCRIBE` / `SUNSUBSCRIBE` go as commands (one channel each:
//! the connection takes each confirmation push as the reply of one command) and messages
//! arrive as `smessage` pushes. After a disconnection it connects again, with a doubling
//! delay, and subscribes every registered channel again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use redis::{AsyncConnectionConfig, PushInfo, PushKind};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::{next_delay, MessageSink, RedisOptions, RedisStats};

/// How often an idle connection is checked with a `PING` (a half-open connection would
/// otherwise go unnoticed until Redis is written to).
const PING_EVERY: Duration = Duration::from_secs(5);

pub(super) enum Command {
    Subscribe(String),
    Unsubscribe(String),
    /// Answered once the commands before it were done on a live connection.
    Barrier(oneshot::Sender<()>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a map insert or lookup: a panic cannot leave it half done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which adapter each subscribed channel's messages go to.
#[derive(Default)]
pub(super) struct Registry {
    channels: Mutex<HashMap<String, Weak<dyn MessageSink>>>,
}

impl Registry {
    pub(super) fn insert(&self, channel: String, sink: Weak<dyn MessageSink>) {
        lock(&self.channels).insert(channel, sink);
    }

    pub(super) fn remove(&self, channel: &str) {
        lock(&self.channels).remove(channel);
    }

    fn snapshot(&self) -> Vec<String> {
        lock(&self.channels).keys().cloned().collect()
    }

    fn sink(&self, channel: &str) -> Option<Arc<dyn MessageSink>> {
        lock(&self.channels).get(channel)?.upgrade()
    }
}

/// The channel and payload of an `smessage` push.
fn smessage(push: &PushInfo) -> Option<(&str, &[u8])> {
    match push.data.as_slice() {
        [redis::Value::BulkString(channel), redis::Value::BulkString(payload), ..] => {
            Some((std::str::from_utf8(channel).ok()?, payload))
        }
        _ => None,
    }
}

/// Runs the subscribed connection until every handle of the client is gone.
pub(super) async fn run(
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
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(o.connection_timeout)
            .set_response_timeout(o.response_timeout)
            .set_push_sender(tx);
        let attempt = async {
            let mut conn = redis.connect(&config).await?;
            let channels = registry.snapshot();
            if !channels.is_empty() {
                let mut pipe = redis::pipe();
                for c in &channels {
                    pipe.cmd("SSUBSCRIBE").arg(c);
                }
                pipe.exec_async(&mut conn).await?;
            }
            Ok::<_, redis::RedisError>(conn)
        };
        let mut conn = match attempt.await {
            Ok(c) => c,
            Err(e) => {
                stats.count_connection_failure();
                if stats.set_subscriber_up(false) || !connected_before {
                    tracing::warn!(error = %e, "iolite-redis: cannot subscribe to shard channels on Redis (SSUBSCRIBE needs Redis 7); retrying");
                } else {
                    tracing::debug!(error = %e, "iolite-redis: sharded subscriber still cannot connect");
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
            tracing::info!("iolite-redis: subscribed to shard channels on Redis again");
        }
        connected_before = true;
        for tx in waiting.drain(..) {
            let _ = tx.send(());
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            tokio::select! {
                push = pushes.recv() => match push {
                    Some(p) if p.kind == PushKind::SMessage => {
                        if let Some((channel, payload)) = smessage(&p) {
                            if let Some(sink) = registry.sink(channel) {
                                sink.on_message(channel, payload);
                            }
                        }
                    }
                    Some(p) if p.kind == PushKind::Disconnection => break,
                    // Confirmations of (un)subscriptions, and any other kind.
                    Some(_) => {}
                    None => break,
                },
                cmd = cmds.recv() => {
                    let Some(cmd) = cmd else { return };
                    let r = match cmd {
                        Command::Subscribe(c) => {
                            redis::cmd("SSUBSCRIBE").arg(&c).exec_async(&mut conn).await
                        }
                        Command::Unsubscribe(c) => {
                            redis::cmd("SUNSUBSCRIBE").arg(&c).exec_async(&mut conn).await
                        }
                        Command::Barrier(tx) => {
                            let _ = tx.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "iolite-redis: shard (un)subscription failed");
                        break;
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = redis::cmd("PING").exec_async(&mut conn).await {
                        tracing::debug!(error = %e, "iolite-redis: sharded subscriber PING failed");
                        break;
                    }
                }
            }
        }
        stats.set_subscriber_up(false);
        tracing::warn!("iolite-redis: lost the Redis shard subscription; reconnecting");
    }
}

/// Resolves when every sender of `cmds` is gone. (Un)subscriptions that arrive meanwhile
/// are dropped: the registry has every channel for the next connection. Barriers wait in
/// `waiting` for it.
async fn closed(
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
