//! Where a node's connections go: one Redis server, the master that Redis Sentinel names
//! (asked again at every reconnection, so a failover is followed), or a Redis Cluster
//! (commands routed to the node that owns their key or channel).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, Pipeline, ProtocolVersion, PushInfo, RedisConnectionInfo,
    RedisFuture, RedisResult, Value,
};
use tokio::sync::mpsc;

use crate::client::RedisClientError;

/// The URL scheme of a Sentinel-managed master:
/// `redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]`.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The URL scheme of a Redis Cluster, listing some of its nodes (the rest are found from
/// them): `redis+cluster://[user:password@]host:port[,host:port...]`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A Redis server to connect to.
#[derive(Clone)]
pub(crate) enum Endpoint {
    /// A server at a fixed address.
    Direct(redis::Client),
    /// The current master of a Sentinel service.
    Sentinel(Arc<tokio::sync::Mutex<SentinelClient>>),
    /// A Redis Cluster, from its seed nodes.
    Cluster(ClusterClient),
}

/// How a connection is made.
pub(crate) struct Dial {
    pub(crate) connection_timeout: Duration,
    pub(crate) response_timeout: Duration,
    /// Where pushes (RESP3 messages of subscriptions, disconnection notices) go.
    pub(crate) pushes: Option<mpsc::UnboundedSender<PushInfo>>,
}

/// A connection to a server, or to every node of a cluster (commands routed by key).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Splits `[user:password@]rest` (the last `@`: a password may hold one).
fn credentials(s: &str) -> (Option<String>, Option<String>, &str) {
    let Some((auth, rest)) = s.rsplit_once('@') else {
        return (None, None, s);
    };
    let (user, password) = match auth.split_once(':') {
        Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
        // As in `redis://user@host/`: a name without a password.
        None => (Some(auth.to_owned()), None),
    };
    (user, password, rest)
}

impl Endpoint {
    /// Parses `redis://...`, `rediss://...`, `redis+unix://...`, a Sentinel URL or a
    /// cluster URL. `resp3`: speak RESP3 (needed for pushes, as sharded pub/sub uses).
    pub(crate) fn parse(url: &str, resp3: bool) -> Result<Self, RedisClientError> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            return Self::cluster(rest);
        }
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            let mut info = redis::IntoConnectionInfo::into_connection_info(url)
                .map_err(RedisClientError::InvalidUrl)?;
            if resp3 {
                info.redis.protocol = ProtocolVersion::RESP3;
            }
            return redis::Client::open(info)
                .map(Endpoint::Direct)
                .map_err(RedisClientError::InvalidUrl);
        };
        let bad = |why: &'static str| {
            RedisClientError::InvalidUrl(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                why,
            )))
        };
        let (username, password, rest) = credentials(rest);
        let (hosts, path) = rest.split_once('/').ok_or_else(|| {
            bad("a Sentinel URL names its master: redis+sentinel://host:port/name")
        })?;
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        let service = parts.next().ok_or_else(|| {
            bad("a Sentinel URL names its master: redis+sentinel://host:port/name")
        })?;
        let db = match parts.next() {
            Some(d) => d
                .parse()
                .map_err(|_| bad("the database after the master name is a number"))?,
            None => 0,
        };
        let sentinels: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{h}/"))
            .collect();
        if sentinels.is_empty() {
            return Err(bad(
                "a Sentinel URL lists at least one sentinel: redis+sentinel://host:port/name",
            ));
        }
        let node = SentinelNodeConnectionInfo {
            tls_mode: None,
            redis_connection_info: Some(RedisConnectionInfo {
                db,
                username,
                password,
                protocol: if resp3 {
                    ProtocolVersion::RESP3
                } else {
                    ProtocolVersion::RESP2
                },
            }),
        };
        let client = SentinelClient::build(
            sentinels,
            service.to_owned(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(RedisClientError::InvalidUrl)?;
        Ok(Endpoint::Sentinel(Arc::new(tokio::sync::Mutex::new(
            client,
        ))))
    }

    /// A cluster from `[user:password@]host:port[,host:port...][/]`, over RESP3.
    fn cluster(rest: &str) -> Result<Self, RedisClientError> {
        let bad = |why: &'static str| {
            RedisClientError::InvalidUrl(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                why,
            )))
        };
        let (username, password, rest) = credentials(rest);
        let hosts = rest.strip_suffix('/').unwrap_or(rest);
        if hosts.contains('/') {
            return Err(bad(
                "a cluster URL lists nodes only (a cluster has one database): redis+cluster://host:port[,host:port]",
            ));
        }
        let mut nodes = Vec::new();
        for h in hosts.split(',').filter(|h| !h.is_empty()) {
            let mut info = redis::IntoConnectionInfo::into_connection_info(format!("redis://{h}/"))
                .map_err(RedisClientError::InvalidUrl)?;
            info.redis.username.clone_from(&username);
            info.redis.password.clone_from(&password);
            // Always: a cluster's subscriptions (of any kind) arrive as pushes.
            info.redis.protocol = ProtocolVersion::RESP3;
            nodes.push(info);
        }
        if nodes.is_empty() {
            return Err(bad(
                "a cluster URL lists at least one node: redis+cluster://host:port[,host:port]",
            ));
        }
        ClusterClientBuilder::new(nodes)
            // A node that is down fails a command after a few tries, not 16: the adapters
            // have their own reconnection with backoff.
            .retries(3)
            .build()
            .map(Endpoint::Cluster)
            .map_err(RedisClientError::InvalidUrl)
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Endpoint::Cluster(_))
    }

    /// A new connection: to the master Sentinel names now, for a Sentinel endpoint; to
    /// every node, for a cluster.
    pub(crate) async fn connect(&self, dial: Dial) -> RedisResult<Conn> {
        let single = |d: Dial| {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(d.connection_timeout)
                .set_response_timeout(d.response_timeout);
            match d.pushes {
                Some(tx) => config.set_push_sender(tx),
                None => config,
            }
        };
        match self {
            Endpoint::Direct(c) => c
                .get_multiplexed_async_connection_with_config(&single(dial))
                .await
                .map(Conn::Single),
            Endpoint::Sentinel(s) => {
                let client = s.lock().await.async_get_client().await?;
                client
                    .get_multiplexed_async_connection_with_config(&single(dial))
                    .await
                    .map(Conn::Single)
            }
            Endpoint::Cluster(c) => {
                let mut config = ClusterConfig::new()
                    .set_connection_timeout(dial.connection_timeout)
                    .set_response_timeout(dial.response_timeout);
                if let Some(tx) = dial.pushes {
                    config = config.set_push_sender(tx);
                }
                // Connecting asks the seeds for the slot map and connects to every master.
                let total = dial.connection_timeout * 2 + dial.response_timeout;
                match tokio::time::timeout(total, c.get_async_connection_with_config(config)).await
                {
                    Ok(r) => r.map(Conn::Cluster),
                    Err(_) => Err(redis::RedisError::from((
                        redis::ErrorKind::IoError,
                        "connecting to the Redis Cluster timed out",
                    ))),
                }
            }
        }
    }
}

impl Endpoint {
    /// A new RESP2 subscriber connection (a cluster's subscriptions go over
    /// [`connect`](Self::connect) with pushes instead).
    pub(crate) async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        match self {
            Endpoint::Direct(c) => c.get_async_pubsub().await,
            Endpoint::Sentinel(s) => {
                let client = s.lock().await.async_get_client().await?;
                client.get_async_pubsub().await
            }
            Endpoint::Cluster(_) => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a Redis Cluster subscribes over RESP3 pushes",
            ))),
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Direct(c) => {
                write!(f, "Endpoint::Direct({:?})", c.get_connection_info().addr)
            }
            Endpoint::Sentinel(_) => f.write_str("Endpoint::Sentinel"),
            Endpoint::Cluster(_) => f.write_str("Endpoint::Cluster"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn sentinel_and_cluster_urls_are_parsed_and_bad_ones_refused() {
        assert!(matches!(
            Endpoint::parse(
                "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster",
                false
            ),
            Ok(Endpoint::Sentinel(_))
        ));
        assert!(matches!(
            Endpoint::parse("redis+sentinel://:secret@127.0.0.1:26379/mymaster/2", true),
            Ok(Endpoint::Sentinel(_))
        ));
        assert!(matches!(
            Endpoint::parse("redis://127.0.0.1:6379/", false),
            Ok(Endpoint::Direct(_))
        ));
        assert!(matches!(
            Endpoint::parse("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", true),
            Ok(Endpoint::Cluster(_))
        ));
        assert!(matches!(
            Endpoint::parse("redis+cluster://user:p@ss@127.0.0.1:7000/", false),
            Ok(Endpoint::Cluster(_))
        ));
        for bad in [
            "redis+cluster://",
            "redis+cluster://127.0.0.1:7000/2",
            "redis+cluster://127.0.0.1:notaport",
            "redis+sentinel://127.0.0.1:26379",
            "redis+sentinel://127.0.0.1:26379/",
            "redis+sentinel:///mymaster",
            "redis+sentinel://127.0.0.1:26379/mymaster/x",
            "http://127.0.0.1/",
        ] {
            assert!(Endpoint::parse(bad, false).is_err(), "{bad}");
        }
    }
}
