//! Where a node's connections go: one Redis server, or the master that Redis Sentinel
//! names (asked again at every reconnection, so a failover is followed).

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{AsyncConnectionConfig, ProtocolVersion, RedisConnectionInfo, RedisResult};

use crate::client::RedisClientError;

/// The URL scheme of a Sentinel-managed master:
/// `redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]`.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// A Redis server to connect to.
#[derive(Clone)]
pub(crate) enum Endpoint {
    /// A server at a fixed address.
    Direct(redis::Client),
    /// The current master of a Sentinel service.
    Sentinel(Arc<tokio::sync::Mutex<SentinelClient>>),
}

impl Endpoint {
    /// Parses `redis://...`, `rediss://...`, `redis+unix://...` or a Sentinel URL.
    /// `resp3`: speak RESP3 (needed for pushes, as sharded pub/sub uses).
    pub(crate) fn parse(url: &str, resp3: bool) -> Result<Self, RedisClientError> {
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
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
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
        let (username, password) = match auth.map(|a| a.split_once(':')) {
            Some(Some((u, p))) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
            // As in `redis://user@host/`: a name without a password.
            Some(None) => (auth.map(str::to_owned), None),
            None => (None, None),
        };
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

    /// A new connection (to the master Sentinel names now, for a Sentinel endpoint).
    pub(crate) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        match self {
            Endpoint::Direct(c) => c.get_multiplexed_async_connection_with_config(config).await,
            Endpoint::Sentinel(s) => {
                let client = s.lock().await.async_get_client().await?;
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
            }
        }
    }
}

impl Endpoint {
    /// A new subscriber connection.
    pub(crate) async fn pubsub(&self) -> RedisResult<redis::aio::PubSub> {
        match self {
            Endpoint::Direct(c) => c.get_async_pubsub().await,
            Endpoint::Sentinel(s) => {
                let client = s.lock().await.async_get_client().await?;
                client.get_async_pubsub().await
            }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn sentinel_urls_are_parsed_and_bad_ones_refused() {
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
        for bad in [
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
