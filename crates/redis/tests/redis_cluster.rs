//! Every adapter on a real Redis Cluster (three `redis-server --cluster-enabled` masters
//! made one by `redis-cli --cluster create`): iolite nodes on `redis+cluster://` URLs, with
//! Node.js socket.io 4.8 nodes on node-redis's `createCluster` (tests/redis/node-node.mjs,
//! sharded-node.mjs) in the same cluster, and iolite-client clients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the test failing

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::{client, eventually, expect, fast, within, NodePeer, Proxy};
use iolite::adapter::{Adapter, LocalNamespace};
use iolite::{Recovery, SocketIo, SocketRef};
use iolite_client::{Lifecycle, Manager, Socket, Transport};
use iolite_redis::{
    AdapterOptions, RedisClient, ShardedClient, ShardedOptions, StreamsClient, StreamsOptions,
    SubscriptionMode,
};
use iolite_test_support::redis_cluster::{redis_cli, RedisCluster};
use serde_json::json;
use tokio::sync::mpsc;

/// An iolite node in this process on whatever adapter `factory` makes.
struct Node {
    io: SocketIo,
    port: u16,
    sockets: mpsc::UnboundedReceiver<SocketRef>,
    serve: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(
        name: &'static str,
        factory: impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static,
        recovery: bool,
        ready: impl Future<Output = ()>,
    ) -> Self {
        let mut b = SocketIo::builder().adapter(factory);
        if recovery {
            b = b.recovery(Recovery {
                max_disconnection_duration: Duration::from_secs(30),
                ..Default::default()
            });
        }
        let io = b.build();
        let (tx, sockets) = mpsc::unbounded_channel();
        let ns = io.ns("/", move |socket: SocketRef| {
            let tx = tx.clone();
            async move {
                if !socket.recovered() {
                    let auth = socket.handshake().auth().clone();
                    socket
                        .set_data(&json!({"node": name, "name": auth["name"]}))
                        .unwrap();
                    for r in auth["rooms"].as_array().cloned().unwrap_or_default() {
                        socket.join(r.as_str().unwrap().to_owned());
                    }
                }
                let _ = tx.send(socket);
            }
        });
        ns.on_server_side("who", move |args, ack| {
            if let Some(ack) = ack {
                ack.send(json!({"node": name, "args": args}));
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let io2 = io.clone();
        let serve = tokio::spawn(async move {
            let _ = io2.serve(listener).await;
        });
        within(ready).await;
        Self {
            io,
            port,
            sockets,
            serve,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn server_count(&self) -> usize {
        self.io.root_ns().server_count().await
    }
}

async fn pubsub_node(cluster: &RedisCluster, name: &'static str) -> Node {
    let redis = RedisClient::with_options(&cluster.url(), fast()).unwrap();
    let r = redis.clone();
    Node::start(
        name,
        redis.adapter_factory(AdapterOptions::default()),
        false,
        async move { r.ready().await },
    )
    .await
}

async fn sharded_node(cluster: &RedisCluster, name: &'static str) -> Node {
    let redis = ShardedClient::with_options(&cluster.url(), fast()).unwrap();
    let r = redis.clone();
    Node::start(
        name,
        redis.adapter_factory(ShardedOptions {
            subscription_mode: SubscriptionMode::Dynamic,
            ..Default::default()
        }),
        false,
        async move { r.ready().await },
    )
    .await
}

fn streams_options() -> StreamsOptions {
    StreamsOptions {
        block_time: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_secs(2),
        reconnect_delay: Duration::from_millis(50),
        reconnect_delay_max: Duration::from_millis(400),
        ..Default::default()
    }
}

async fn streams_node(cluster: &RedisCluster, name: &'static str) -> Node {
    let redis = StreamsClient::with_options(&cluster.url(), streams_options()).unwrap();
    let r = redis.clone();
    Node::start(name, redis.adapter_factory(), true, async move {
        r.ready().await
    })
    .await
}

/// Which masters hold subscriptions to shard channels (`PUBSUB SHARDCHANNELS` on each).
fn masters_with_shard_channels(cluster: &RedisCluster) -> usize {
    cluster
        .ports
        .iter()
        .filter(|p| {
            !redis_cli(**p, &["PUBSUB", "SHARDCHANNELS"])
                .trim()
                .is_empty()
        })
        .count()
}

/// Rooms whose channels hash to different slots (with three masters, mostly on different
/// masters: the sharded test checks that its subscriptions are spread).
const ROOMS: [&str; 3] = ["red", "green", "blue"];

/// One client per node (all in every room of [`ROOMS`]); a broadcast from each node to each
/// room reaches all of them, and `fetch_sockets` and acks cross the cluster.
/// `sharded`: the room channels are subscribed as the clients join (dynamic mode), so
/// wait until all three nodes are subscribed to each before broadcasting.
async fn one_cluster(io_a: &Node, io_b: &Node, js: &mut NodePeer, sharded: Option<&RedisCluster>) {
    let ca = client(&io_a.url(), "ca", &ROOMS).await;
    let cb = client(&io_b.url(), "cb", &ROOMS).await;
    let cn = client(&js.url(), "cn", &ROOMS).await;
    js.event("connection").await;
    if let Some(cluster) = sharded {
        for room in ROOMS {
            let channel = format!("socket.io#/#{room}#");
            eventually(|| async {
                let n: u64 = cluster
                    .ports
                    .iter()
                    .map(|p| {
                        let out = redis_cli(*p, &["PUBSUB", "SHARDNUMSUB", &channel]);
                        out.lines()
                            .nth(1)
                            .and_then(|l| l.trim().parse::<u64>().ok())
                            .unwrap_or(0)
                    })
                    .sum();
                n == 3
            })
            .await;
        }
    }
    let all = [&ca, &cb, &cn];

    for (i, room) in ROOMS.iter().enumerate() {
        io_a.io.to(*room).emit("from-a", &json!([room, i])).unwrap();
        for c in all {
            assert_eq!(expect(c, "from-a").await, vec![json!([room, i])], "{room}");
        }
        js.ok(
            "emit",
            json!({"room": room, "event": "from-node", "args": [room]}),
        )
        .await;
        for c in all {
            assert_eq!(expect(c, "from-node").await, vec![json!(room)], "{room}");
        }
    }
    // Everyone, but not the room's members on B's side: `except`.
    io_b.io.except("red").emit("none", &1).unwrap();
    io_b.io.emit("all", &2).unwrap();
    for c in all {
        assert_eq!(next_name(c).await, "all", "`except` let a member through");
    }

    // fetch_sockets sees the sockets of every node, from either side.
    let mut names: Vec<String> = io_a
        .io
        .fetch_sockets()
        .await
        .unwrap()
        .iter()
        .map(|s| s.data_value()["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ca", "cb", "cn"]);
    let fetched = js.ok("fetchSockets", json!({})).await;
    assert_eq!(fetched.as_array().unwrap().len(), 3, "{fetched}");

    // A broadcast with acks counts the clients of every node (last: the answering tasks
    // take every event).
    for c in all {
        let c = c.clone();
        tokio::spawn(async move {
            while let Some(mut ev) = c.next_event().await {
                if ev.name == "q" {
                    let _ = ev.ack(&("yes",));
                }
            }
        });
    }
    let stream = io_a
        .io
        .broadcast()
        .timeout(Duration::from_secs(5))
        .emit_with_ack("q", &1)
        .unwrap();
    let got = within(stream.collect()).await.unwrap();
    assert_eq!(got.len(), 3, "answers from every node's client");
    assert!(got.iter().all(|r| r.first() == json!("yes")));
}

async fn next_name(c: &Socket) -> String {
    common::next(c).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_adapter_on_a_redis_cluster_forms_one_cluster_with_node_js() {
    let cluster = RedisCluster::start(3);
    let a = pubsub_node(&cluster, "a").await;
    let b = pubsub_node(&cluster, "b").await;
    let mut js = NodePeer::start_on_cluster(&cluster, "tests/redis/node-node.mjs", 5000, &[]).await;
    // PUBSUB NUMSUB summed over the masters: each node's subscriber is on one of them.
    eventually(|| async { a.server_count().await == 3 }).await;
    assert_eq!(js.ok("serverCount", json!({})).await, json!(3));
    one_cluster(&a, &b, &mut js, None).await;

    // Server-side emits with answers go both ways.
    let answers =
        a.io.root_ns()
            .server_side_emit_with_ack("who", vec![json!(1)], Duration::from_secs(3))
            .await
            .unwrap();
    let mut nodes: Vec<String> = answers
        .iter()
        .map(|v| v["node"].as_str().unwrap().to_owned())
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["b", "node"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_adapter_on_a_redis_cluster_subscribes_where_each_channel_lives() {
    let cluster = RedisCluster::start(3);
    let a = sharded_node(&cluster, "a").await;
    let b = sharded_node(&cluster, "b").await;
    let mut js = NodePeer::start_on_cluster(
        &cluster,
        "tests/redis/sharded-node.mjs",
        5000,
        &[("SUBSCRIPTION_MODE", "dynamic")],
    )
    .await;
    // SHARDNUMSUB of the namespace channel, summed over the masters.
    eventually(|| async { a.server_count().await == 3 }).await;
    assert_eq!(js.ok("serverCount", json!({})).await, json!(3));
    one_cluster(&a, &b, &mut js, Some(&cluster)).await;
    // Dynamic mode subscribes to each room's channel: the shard channels are spread over
    // more than one master (a single-connection subscriber would be refused there).
    assert!(
        masters_with_shard_channels(&cluster) >= 2,
        "every shard channel is on one master"
    );
}

/// A client of `news` through the proxy on `port`, reconnecting after a disconnection.
async fn reconnecting_client(port: u16, name: &str) -> Socket {
    let m = Manager::builder(format!("http://127.0.0.1:{port}"))
        .transports([Transport::WebSocket])
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(300))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    within(
        m.socket("/")
            .auth(json!({"name": name, "rooms": ["news"]}))
            .connect(),
    )
    .await
    .unwrap()
}

/// Whether the connection after the next disconnection recovered the session.
async fn recovered_after_reconnecting(c: &Socket) -> bool {
    let mut gone = false;
    within(async {
        loop {
            match c.next_lifecycle().await {
                Lifecycle::Disconnect(_) => gone = true,
                Lifecycle::Connect { recovered } if gone => return recovered,
                _ => {}
            }
        }
    })
    .await
}

/// The session of a client whose node dies is recovered on another node, through the
/// stream and the session keys of the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_on_a_redis_cluster_recovers_a_session_on_another_node() {
    let cluster = RedisCluster::start(3);
    let mut a = streams_node(&cluster, "a").await;
    let mut b = streams_node(&cluster, "b").await;
    eventually(|| async { b.server_count().await == 2 }).await;
    let proxy = Proxy::start(a.port).await;
    let c = reconnecting_client(proxy.port, "rec").await;
    within(a.sockets.recv()).await.unwrap();
    let sid = c.id().unwrap();
    b.io.to("news").emit("n", &0).unwrap();
    assert_eq!(expect(&c, "n").await, vec![json!(0)]);

    proxy.point_to(Some(b.port));
    a.io.close();
    a.serve.abort();
    eventually(|| async { b.server_count().await == 1 }).await;
    for i in 1..=5 {
        b.io.to("news").emit("n", &i).unwrap();
    }
    let recovered = recovered_after_reconnecting(&c).await;
    assert!(recovered, "the session was not recovered");
    assert_eq!(c.id().unwrap(), sid);
    for i in 1..=5 {
        assert_eq!(expect(&c, "n").await, vec![json!(i)], "missed event {i}");
    }
    assert_eq!(
        within(b.sockets.recv()).await.unwrap().id().as_str(),
        sid,
        "the connection handler runs again on B"
    );
    b.serve.abort();
}

/// A master restarted while traffic flows (its slots are down meanwhile): the nodes
/// reconnect, subscribe again and broadcasts cross again; nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_master_is_followed_by_every_adapter() {
    let mut cluster = RedisCluster::start(3);
    let a = pubsub_node(&cluster, "a").await;
    let b = pubsub_node(&cluster, "b").await;
    let sa = sharded_node(&cluster, "sa").await;
    let sb = sharded_node(&cluster, "sb").await;
    eventually(|| async { a.server_count().await == 2 && sa.server_count().await == 2 }).await;
    let cb = client(&b.url(), "cb", &ROOMS).await;
    let csb = client(&sb.url(), "csb", &ROOMS).await;

    for i in 0..3 {
        cluster.stop(i);
        // Broadcasts while a master is away fail or are lost, never panic; local clients
        // still get theirs.
        for room in ROOMS {
            let _ = a.io.to(room).emit("lost", &0);
            let _ = sa.io.to(room).emit("lost", &0);
        }
        cluster.restart(i);
        // Once the adapters are subscribed again, broadcasts cross again.
        for (node, c) in [(&a, &cb), (&sa, &csb)] {
            within(async {
                loop {
                    for room in ROOMS {
                        let _ = node.io.to(room).emit("back", &i);
                    }
                    match tokio::time::timeout(Duration::from_millis(300), c.next_event()).await {
                        Ok(Some(ev)) if ev.name == "back" => break,
                        _ => {}
                    }
                }
            })
            .await;
            // Drain what else came.
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(300), c.next_event()).await
            {}
        }
    }
    eventually(|| async { a.server_count().await == 2 && sa.server_count().await == 2 }).await;
}

/// iolite and Node.js streams adapters (node-redis `createCluster`) on one Redis Cluster:
/// heartbeats count both, broadcasts cross both ways, and a Node.js client's session is
/// recovered on iolite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_adapter_on_a_redis_cluster_forms_one_cluster_with_node_js() {
    let cluster = RedisCluster::start(3);
    let mut a = streams_node(&cluster, "a").await;
    let mut js = NodePeer::start_on_cluster(
        &cluster,
        "tests/redis/node-node.mjs",
        5000,
        &[("ADAPTER", "streams"), ("RECOVERY", "1")],
    )
    .await;
    eventually(|| async { a.server_count().await == 2 }).await;
    let ca = client(&a.url(), "ca", &["news"]).await;
    within(a.sockets.recv()).await.unwrap();
    let proxy = Proxy::start(js.port).await;
    let cn = reconnecting_client(proxy.port, "cn").await;
    js.event("connection").await;
    let sid = cn.id().unwrap();

    // One broadcast from each side, the second only after the first has arrived everywhere:
    // the two nodes' broadcasts have no order between them (iolite's reaches the Node.js
    // client through the stream, Node's own is local to it).
    a.io.to("news").emit("from-a", &1).unwrap();
    for c in [&ca, &cn] {
        assert_eq!(expect(c, "from-a").await, vec![json!(1)]);
    }
    js.ok(
        "emit",
        json!({"room": "news", "event": "from-node", "args": [2]}),
    )
    .await;
    for c in [&ca, &cn] {
        assert_eq!(expect(c, "from-node").await, vec![json!(2)]);
    }

    // The client's connection to the Node.js node breaks: the Node adapter stores its
    // session in the cluster (on the master of its key's slot); meanwhile both sides
    // broadcast; it comes back through the same URL to iolite and recovers.
    proxy.point_to(None);
    proxy.cut();
    eventually(|| async {
        cluster
            .ports
            .iter()
            .any(|p| redis_cli(*p, &["KEYS", "sio:session:*"]).contains("sio:session:"))
    })
    .await;
    for i in 1..=3 {
        a.io.to("news").emit("missed", &i).unwrap();
    }
    js.ok(
        "emit",
        json!({"room": "news", "event": "missed", "args": [4]}),
    )
    .await;
    proxy.point_to(Some(a.port));
    let recovered = recovered_after_reconnecting(&cn).await;
    assert!(recovered, "the Node.js session was not recovered on iolite");
    assert_eq!(cn.id().unwrap(), sid);
    // Each node's broadcasts in their order; the two nodes' interleave as they reached the
    // stream.
    let mut got = Vec::new();
    for _ in 1..=4 {
        got.push(expect(&cn, "missed").await[0].as_i64().unwrap());
    }
    let from_a: Vec<i64> = got.iter().copied().filter(|i| *i <= 3).collect();
    assert_eq!(from_a, [1, 2, 3], "{got:?}");
    assert!(got.contains(&4), "{got:?}");
    assert!(within(a.sockets.recv()).await.unwrap().recovered());
}
