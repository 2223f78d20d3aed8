//! The adapter's life around its runtime and its namespace: made where no tokio runtime runs
//! (namespaces created before the runtime), it logs and starts once one is there; closed, it
//! unsubscribes and the node stops counting.

#![allow(clippy::unwrap_used)] // test code: a failure is the test failing

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use iolite::parser::PacketType;
use iolite::SocketIo;
use iolite_redis::wire::BroadcastMessage;
use iolite_redis::RedisClient;
use serde_json::json;

async fn numsub(c: &mut redis::aio::MultiplexedConnection, channel: &str) -> usize {
    let (_, n): (String, usize) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(c)
        .await
        .unwrap();
    n
}

#[test]
fn an_adapter_made_outside_a_runtime_starts_in_the_next_one() {
    let redis = RedisServer::start();
    let client = RedisClient::with_options(&redis.url(), fast()).unwrap();
    let io = SocketIo::builder()
        .adapter(client.adapter_factory(Default::default()))
        .build();
    // No runtime: the adapter is made, logs, and does not panic; the broadcast is queued.
    let root = io.ns("/", || async {});
    root.emit("early", &1).unwrap();
    assert!(!client.stats().is_connected());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let raw = redis::Client::open(redis.url()).unwrap();
        let mut sub = raw.get_async_pubsub().await.unwrap();
        sub.psubscribe("socket.io#/#*").await.unwrap();
        let mut conn = raw.get_multiplexed_async_connection().await.unwrap();
        assert_eq!(numsub(&mut conn, "socket.io-request#/#").await, 0);

        // The next adapter made inside the runtime starts the connections for all.
        let late = io.ns("/late", || async {});
        within(client.ready()).await;
        assert!(client.stats().is_connected());
        assert_eq!(numsub(&mut conn, "socket.io-request#/#").await, 1);
        assert_eq!(numsub(&mut conn, "socket.io-request#/late#").await, 1);
        assert_eq!(root.server_count().await, 1);
        assert_eq!(late.server_count().await, 1);

        // The broadcast queued before the runtime went out.
        let msg = within(sub.on_message().next()).await.unwrap();
        assert_eq!(msg.get_channel_name(), "socket.io#/#");
        let m = BroadcastMessage::decode(msg.get_payload_bytes()).unwrap();
        assert_eq!(m.packet.kind, PacketType::Event);
        assert_eq!(m.packet.data, json!(["early", 1]));

        // Closing a namespace's adapter unsubscribes it; the other stays.
        late.adapter().close();
        within(async {
            while numsub(&mut conn, "socket.io-request#/late#").await != 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(numsub(&mut conn, "socket.io-request#/#").await, 1);

        // Closing the client: the node leaves, publishes fail, nothing panics.
        client.close();
        within(async {
            while numsub(&mut conn, "socket.io-request#/#").await != 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(matches!(
            root.emit("late", &2),
            Err(iolite::EmitError::Adapter(
                iolite::AdapterError::Unavailable(_)
            ))
        ));
        assert_eq!(root.server_count().await, 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_redis_at_startup_is_retried() {
    // Nothing listens there yet.
    let mut redis = RedisServer::start();
    redis.stop();
    let client = RedisClient::with_options(&redis.url(), fast()).unwrap();
    let io = SocketIo::builder()
        .adapter(client.adapter_factory(Default::default()))
        .build();
    let ns = io.ns("/", || async {});
    let stats = client.stats();
    eventually(|| {
        let n = stats.connection_failures();
        async move { n >= 2 }
    })
    .await;
    assert!(!stats.is_connected());
    // Requests fail at once instead of waiting for answers nobody can send.
    assert!(matches!(
        io.fetch_sockets().await,
        Err(iolite::AdapterError::Unavailable(_))
    ));
    assert_eq!(ns.server_count().await, 1);

    redis.restart();
    within(client.ready()).await;
    eventually(|| {
        let ns = ns.clone();
        async move { ns.emit("x", &1).is_ok() && ns.server_count().await == 1 }
    })
    .await;
    assert!(io.fetch_sockets().await.unwrap().is_empty());
}
