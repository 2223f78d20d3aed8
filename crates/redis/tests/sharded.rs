//! The sharded adapter against real peers: its own `redis-server` (7, for `SSUBSCRIBE`), a
//! Node.js socket.io 4.8 node with `createShardedAdapter` of @socket.io/redis-adapter 8.3
//! (tests/redis/sharded-node.mjs), iolite nodes in this process, and iolite-client clients.
//! Every subscription mode is run both ways.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the test failing

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client, disconnected, eventually, expect, fast, next, within, NodePeer, RedisServer};
use iolite::{SocketIo, SocketRef};
use iolite_client::{Binary, Socket};
use iolite_redis::{ShardedClient, ShardedOptions, SubscriptionMode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

struct Node {
    io: SocketIo,
    port: u16,
    client: ShardedClient,
    sockets: mpsc::UnboundedReceiver<SocketRef>,
    server_side: mpsc::UnboundedReceiver<(String, Vec<Value>)>,
    serve: tokio::task::JoinHandle<()>,
}

impl Node {
    async fn start(redis: &RedisServer, name: &'static str, mode: SubscriptionMode) -> Self {
        let client = ShardedClient::with_options(&redis.url(), fast()).unwrap();
        let io = SocketIo::builder()
            .adapter(client.adapter_factory(ShardedOptions {
                subscription_mode: mode,
                ..Default::default()
            }))
            .build();
        let (tx, sockets) = mpsc::unbounded_channel();
        let ns = io.ns("/", move |socket: SocketRef| {
            let tx = tx.clone();
            async move {
                let auth = socket.handshake().auth().clone();
                socket
                    .set_data(&json!({"node": name, "name": auth["name"]}))
                    .unwrap();
                for r in auth["rooms"].as_array().cloned().unwrap_or_default() {
                    socket.join(r.as_str().unwrap().to_owned());
                }
                let _ = tx.send(socket);
            }
        });
        let (stx, server_side) = mpsc::unbounded_channel();
        for event in ["sse", "who"] {
            let stx = stx.clone();
            ns.on_server_side(event, move |args, ack| {
                let _ = stx.send((event.to_owned(), args.clone()));
                if let Some(ack) = ack {
                    ack.send(json!({"node": name, "args": args}));
                }
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let io2 = io.clone();
        let serve = tokio::spawn(async move {
            let _ = io2.serve(listener).await;
        });
        within(client.ready()).await;
        Self {
            io,
            port,
            client,
            sockets,
            server_side,
            serve,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn next_socket(&mut self) -> SocketRef {
        within(self.sockets.recv()).await.unwrap()
    }

    async fn next_server_side(&mut self) -> (String, Vec<Value>) {
        within(self.server_side.recv()).await.unwrap()
    }

    async fn server_count(&self) -> usize {
        self.io.root_ns().server_count().await
    }
}

async fn node_peer(redis: &RedisServer, mode: SubscriptionMode) -> NodePeer {
    NodePeer::start_script(
        redis,
        "tests/redis/sharded-node.mjs",
        5000,
        &[("SUBSCRIPTION_MODE", mode.as_str())],
    )
    .await
}

/// `PUBSUB SHARDNUMSUB channel`, asked on a connection of the test's own.
async fn subscribers(redis: &RedisServer, channel: &str) -> usize {
    let c = redis::Client::open(redis.url()).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    let (_, n): (String, usize) = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query_async(&mut conn)
        .await
        .unwrap();
    n
}

/// Waits until `n` connections are subscribed to `channel`.
async fn subscribed(redis: &RedisServer, channel: &str, n: usize) {
    within(async {
        loop {
            let got = subscribers(redis, channel).await;
            if got == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waits until every node counts `n` nodes.
async fn cluster_of(n: usize, io: &[&Node], node: Option<&mut NodePeer>) {
    for a in io {
        eventually(|| async { a.server_count().await == n }).await;
    }
    if let Some(node) = node {
        within(async {
            while node.ok("serverCount", json!({})).await != json!(n) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

/// After a broadcast some clients must not get: the next broadcast (published later by the
/// same node, on the namespace's channel) is what they get next.
async fn gets_marker_next(s: &Socket, marker: &str) {
    let (name, _) = next(s).await;
    assert_eq!(name, marker, "an event arrived before the marker");
}

fn room_channel(room: &str) -> String {
    format!("socket.io#/#{room}#")
}

/// Answers every "q" the client gets: its name, or (binary) two bytes.
fn answer_acks(s: &Socket, name: &'static str, binary: bool) {
    let s = s.clone();
    tokio::spawn(async move {
        while let Some(mut ev) = s.next_event().await {
            if ev.name == "q" {
                if binary {
                    let _ = ev.ack(&(Binary::from(vec![0xbe, 0xef]),));
                } else {
                    let _ = ev.ack(&(json!({"name": name, "got": ev.args.values()}),));
                }
            }
        }
    });
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["data"]["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

/// Broadcasts (rooms, except, a socket's own room, binary), fetch_sockets, remote
/// join / leave / disconnect and server-side emits, both ways, in one subscription mode.
async fn one_cluster(mode: SubscriptionMode) {
    let redis = RedisServer::start();
    let mut js = node_peer(&redis, mode).await;
    let mut a = Node::start(&redis, "a", mode).await;
    cluster_of(2, &[&a], Some(&mut js)).await;

    let a1 = client(&a.url(), "a1", &["r"]).await;
    let a1s = a.next_socket().await;
    let a2 = client(&a.url(), "a2", &["muted", "r"]).await;
    a.next_socket().await;
    let a3 = client(&a.url(), "a3", &[]).await;
    a.next_socket().await;
    let n1 = client(&js.url(), "n1", &["r"]).await;
    let n1_id = js.event("connection").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let n2 = client(&js.url(), "n2", &["muted"]).await;
    js.event("connection").await;
    let all = [&a1, &a2, &a3, &n1, &n2];
    // Both nodes subscribe to a room's channel while they have a socket in it; nobody to
    // a socket's own room's, but in the dynamic-private mode.
    let (r_subs, own_subs) = match mode {
        SubscriptionMode::Static => (0, 0),
        SubscriptionMode::Dynamic => (2, 0),
        SubscriptionMode::DynamicPrivate => (2, 1),
    };
    within(a.client.ready()).await;
    subscribed(&redis, &room_channel("r"), r_subs).await;
    subscribed(&redis, &room_channel("muted"), r_subs).await;
    subscribed(&redis, &room_channel(a1s.id().as_str()), own_subs).await;
    subscribed(&redis, &room_channel(&n1_id), own_subs).await;

    // Node to everyone, binary included (msgpack on the wire).
    js.ok(
        "emit",
        json!({"event": "hello", "args": ["from node", {"$bin": "0a0b"}, {"n": 1.5}]}),
    )
    .await;
    for s in all {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "hello");
        assert_eq!(ev.args.get(0), Some(&json!("from node")));
        assert_eq!(ev.args.binary(1).map(|b| &b[..]), Some(&[0x0a, 0x0b][..]));
        assert_eq!(ev.args.get(2), Some(&json!({"n": 1.5})));
    }
    // iolite to everyone, binary included.
    a.io.broadcast()
        .bin(vec![Bytes::from_static(b"\x01\x02\x03")])
        .emit_args(
            "from-io",
            vec![
                json!("x"),
                json!({"file": {"_placeholder": true, "num": 0}}),
            ],
        )
        .unwrap();
    for s in all {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "from-io");
        assert_eq!(ev.args.get(0), Some(&json!("x")));
        let file = ev.args.values()[1]["file"].clone();
        assert_eq!(
            iolite::parser::binary::attachment(&file, ev.args.attachments()).map(|b| &b[..]),
            Some(&[1, 2, 3][..])
        );
    }

    // One room (its own channel in the dynamic modes), from Node, then from iolite.
    js.ok(
        "emit",
        json!({"room": "r", "event": "r-node", "args": [1, {"$bin": "ff"}]}),
    )
    .await;
    js.ok("emit", json!({"event": "m1", "args": []})).await;
    for s in [&a1, &a2, &n1] {
        let ev = within(s.next_event()).await.unwrap();
        assert_eq!(ev.name, "r-node");
        assert_eq!(ev.args.get(0), Some(&json!(1)));
        assert_eq!(ev.args.binary(1).map(|b| &b[..]), Some(&[0xff][..]));
    }
    for s in all {
        gets_marker_next(s, "m1").await;
    }
    a.io.to("r").emit("r-io", &2).unwrap();
    a.io.emit("m2", &()).unwrap();
    for s in [&a1, &a2, &n1] {
        assert_eq!(expect(s, "r-io").await, vec![json!(2)]);
    }
    for s in all {
        gets_marker_next(s, "m2").await;
    }

    // A room minus another (the namespace's channel), both ways.
    js.ok(
        "emit",
        json!({"room": "r", "except": "muted", "event": "except-node", "args": [3]}),
    )
    .await;
    js.ok("emit", json!({"event": "m3", "args": []})).await;
    assert_eq!(expect(&a1, "except-node").await, vec![json!(3)]);
    assert_eq!(expect(&n1, "except-node").await, vec![json!(3)]);
    for s in all {
        gets_marker_next(s, "m3").await;
    }
    a.io.except("r").emit("except-io", &4).unwrap();
    a.io.emit("m4", &()).unwrap();
    assert_eq!(expect(&a3, "except-io").await, vec![json!(4)]);
    assert_eq!(expect(&n2, "except-io").await, vec![json!(4)]);
    for s in all {
        gets_marker_next(s, "m4").await;
    }

    // A socket's own room: the namespace's channel (a 20-character room) in the dynamic
    // mode, the room's own in the dynamic-private mode.
    a.io.to(n1_id.as_str()).emit("to-n1", &5).unwrap();
    assert_eq!(expect(&n1, "to-n1").await, vec![json!(5)]);
    js.ok(
        "emit",
        json!({"room": a1s.id().as_str(), "event": "to-a1", "args": [6]}),
    )
    .await;
    assert_eq!(expect(&a1, "to-a1").await, vec![json!(6)]);

    // fetch_sockets, both ways.
    let team = a.io.to("r").fetch_sockets().await.unwrap();
    let mut got: Vec<String> = team
        .iter()
        .map(|s| s.data_value()["name"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["a1", "a2", "n1"]);
    let n1_remote = team.iter().find(|s| s.id().as_str() == n1_id).unwrap();
    assert!(n1_remote.local().is_none());
    assert_eq!(
        n1_remote.data_value(),
        &json!({"node": "node", "name": "n1"})
    );
    assert!(n1_remote.rooms().iter().any(|r| &**r == "r"));
    let everyone = js.ok("fetchSockets", json!({})).await;
    assert_eq!(names(&everyone), ["a1", "a2", "a3", "n1", "n2"]);
    let theirs = everyone
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["data"]["name"] == "a1")
        .unwrap();
    assert_eq!(theirs["data"]["node"], "a");
    assert!(theirs["rooms"].as_array().unwrap().contains(&json!("r")));

    // Remote join from iolite: the Node socket joins, and a broadcast to the new room from
    // Node reaches the iolite socket that joined it too (subscribed as the room appeared).
    a.io.to("muted").join("late").unwrap();
    within(async {
        loop {
            let local = js.ok("localSockets", json!({})).await;
            let joined = local
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["rooms"].as_array().unwrap().contains(&json!("late")))
                .count();
            if joined == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    within(a.client.ready()).await;
    subscribed(&redis, &room_channel("late"), r_subs).await;
    js.ok(
        "emit",
        json!({"room": "late", "event": "late-node", "args": [7]}),
    )
    .await;
    assert_eq!(expect(&a2, "late-node").await, vec![json!(7)]);
    assert_eq!(expect(&n2, "late-node").await, vec![json!(7)]);

    // Remote leave from Node: the iolite socket leaves, and its node unsubscribes.
    js.ok("socketsLeave", json!({"room": "muted", "leave": "late"}))
        .await;
    eventually(|| {
        let io = a.io.clone();
        async move { io.to("late").sockets().is_empty() }
    })
    .await;
    subscribed(&redis, &room_channel("late"), 0).await;
    // Remote join from Node.
    js.ok("socketsJoin", json!({"room": "r", "join": "from-node"}))
        .await;
    eventually(|| {
        let io = a.io.clone();
        async move { io.to("from-node").sockets().len() == 2 }
    })
    .await;

    // Server-side emits, both ways, without and with answers.
    a.io.root_ns()
        .server_side_emit("sse", vec![json!(1), json!("x")])
        .unwrap();
    let ev = js.event("serverSide").await;
    assert_eq!(
        (
            ev["name"].clone(),
            ev["args"].clone(),
            ev["withAck"].clone()
        ),
        (json!("sse"), json!([1, "x"]), json!(false))
    );
    let answers =
        a.io.root_ns()
            .server_side_emit_with_ack("who", vec![json!(7)], Duration::from_secs(3))
            .await
            .unwrap();
    assert_eq!(answers, vec![json!({"node": "node", "args": [7]})]);
    assert_eq!(js.event("serverSide").await["withAck"], true);
    js.ok(
        "serverSideEmit",
        json!({"event": "sse", "args": [2, {"k": null}]}),
    )
    .await;
    assert_eq!(
        a.next_server_side().await,
        ("sse".into(), vec![json!(2), json!({"k": null})])
    );
    let r = js
        .ok(
            "serverSideEmitWithAck",
            json!({"event": "who", "args": [3]}),
        )
        .await;
    assert_eq!(r["err"], Value::Null, "{r}");
    assert_eq!(r["responses"], json!([{"node": "a", "args": [3]}]));
    assert_eq!(a.next_server_side().await.0, "who");

    // Remote disconnect, both ways.
    js.ok(
        "disconnectSockets",
        json!({"room": a1s.id().as_str(), "close": false}),
    )
    .await;
    assert_eq!(disconnected(&a1).await, "io server disconnect");
    let n1_remote =
        a.io.to(n1_id.as_str())
            .fetch_sockets()
            .await
            .unwrap()
            .pop()
            .unwrap();
    n1_remote.disconnect(false).unwrap();
    assert_eq!(disconnected(&n1).await, "io server disconnect");
    eventually(|| {
        let io = a.io.clone();
        async move { io.sockets().len() == 2 }
    })
    .await;
    // Their own rooms' channels are gone with them.
    subscribed(&redis, &room_channel(a1s.id().as_str()), 0).await;
    a.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_mode_works_both_ways() {
    one_cluster(SubscriptionMode::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_mode_works_both_ways() {
    one_cluster(SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_private_mode_works_both_ways() {
    one_cluster(SubscriptionMode::DynamicPrivate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_from_many_clients_across_both() {
    let redis = RedisServer::start();
    let mode = SubscriptionMode::Dynamic;
    let mut js = node_peer(&redis, mode).await;
    let a = Node::start(&redis, "a", mode).await;
    let b = Node::start(&redis, "b", mode).await;
    cluster_of(3, &[&a, &b], Some(&mut js)).await;
    let clients = [
        (client(&a.url(), "a1", &[]).await, "a1", false),
        (client(&a.url(), "a2", &["q"]).await, "a2", false),
        (client(&b.url(), "b1", &["q"]).await, "b1", false),
        (client(&js.url(), "n1", &["q"]).await, "n1", false),
        (client(&js.url(), "n2", &["q"]).await, "n2", true),
    ];
    for (s, name, bin) in &clients {
        answer_acks(s, name, *bin);
    }

    // From iolite: every client on every node (the namespace's channel, even to one room).
    let stream =
        a.io.broadcast()
            .timeout(Duration::from_secs(3))
            .emit_with_ack("q", &1)
            .unwrap();
    let got = within(stream.collect()).await.unwrap();
    let mut got_names: Vec<String> = Vec::new();
    for r in &got {
        let v = r.first();
        if iolite::parser::binary::is_placeholder(&v) {
            let bin = iolite::parser::binary::attachment(&v, &r.attachments).unwrap();
            assert_eq!(&bin[..], &[0xbe, 0xef]);
            got_names.push("n2".into());
        } else {
            got_names.push(v["name"].as_str().unwrap().to_owned());
        }
    }
    got_names.sort();
    assert_eq!(got_names, ["a1", "a2", "b1", "n1", "n2"]);
    let stream =
        b.io.to("q")
            .timeout(Duration::from_secs(3))
            .emit_with_ack("q", &2)
            .unwrap();
    assert_eq!(within(stream.collect()).await.unwrap().len(), 4);

    // From Node, to one room.
    let r = js
        .ok(
            "emitWithAck",
            json!({"room": "q", "event": "q", "args": [2], "timeout": 3000}),
        )
        .await;
    assert_eq!(r["err"], Value::Null, "{r}");
    let mut got_names: Vec<String> = r["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v.get("name") {
            Some(n) => n.as_str().unwrap().to_owned(),
            None => {
                assert_eq!(v, &json!({"$bin": "beef"}));
                "n2".into()
            }
        })
        .collect();
    got_names.sort();
    assert_eq!(got_names, ["a2", "b1", "n1", "n2"]);
    let a2 = r["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "a2")
        .unwrap();
    assert_eq!(a2["got"], json!([2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_nodes_are_noticed() {
    let redis = RedisServer::start();
    let mode = SubscriptionMode::Dynamic;
    let mut js = node_peer(&redis, mode).await;
    let a = Node::start(&redis, "a", mode).await;
    let b = Node::start(&redis, "b", mode).await;
    cluster_of(3, &[&a, &b], Some(&mut js)).await;
    let _a1 = client(&a.url(), "a1", &["r"]).await;
    let _b1 = client(&b.url(), "b1", &["r"]).await;
    let _n1 = client(&js.url(), "n1", &["r"]).await;
    js.event("connection").await;
    assert_eq!(b.io.fetch_sockets().await.unwrap().len(), 3);

    // An iolite node closes: Node and the other iolite node stop counting it at once, so
    // their requests do not wait for it.
    a.client.close();
    a.io.close();
    cluster_of(2, &[&b], Some(&mut js)).await;
    let started = std::time::Instant::now();
    assert_eq!(names(&js.ok("fetchSockets", json!({})).await), ["b1", "n1"]);
    let r = js
        .ok("serverSideEmitWithAck", json!({"event": "who", "args": []}))
        .await;
    assert_eq!(r["responses"], json!([{"node": "b", "args": []}]), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the gone node"
    );

    // The Node node goes away (killed): the iolite node notices.
    drop(js);
    cluster_of(1, &[&b], None).await;
    let started = std::time::Instant::now();
    let sockets = b.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    assert!(b
        .io
        .root_ns()
        .server_side_emit_with_ack("who", vec![], Duration::from_secs(3))
        .await
        .unwrap()
        .is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the gone node"
    );
    // A node that is counted but does not answer makes a request time out (as in Node).
    let mut frozen = node_peer(&redis, mode).await;
    cluster_of(2, &[&b], Some(&mut frozen)).await;
    frozen.signal("-STOP");
    let err =
        b.io.root_ns()
            .server_side_emit_with_ack("who", vec![], Duration::from_millis(300))
            .await;
    assert_eq!(err, Err(iolite::AdapterError::Timeout));
    frozen.signal("-CONT");
    a.serve.abort();
    b.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_again_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let mode = SubscriptionMode::Dynamic;
    let a = Node::start(&redis, "a", mode).await;
    let b = Node::start(&redis, "b", mode).await;
    cluster_of(2, &[&a, &b], None).await;
    let a1 = client(&a.url(), "a1", &["r"]).await;
    within(a.client.ready()).await;
    subscribed(&redis, &room_channel("r"), 1).await;

    redis.restart();
    // Both nodes come back, each with every channel it had, the room's included.
    cluster_of(2, &[&a, &b], None).await;
    subscribed(&redis, &room_channel("r"), 1).await;
    assert!(a.client.stats().resubscriptions() >= 1);
    assert!(a.client.stats().connection_failures() >= 1);
    assert!(a.client.stats().is_connected());
    // Publishing may need a try or two while the publisher reconnects.
    within(async {
        while b.io.to("r").emit("back", &1).is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(expect(&a1, "back").await, vec![json!(1)]);
    assert!(a.client.stats().received() >= 1);
    a.serve.abort();
    b.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_channels_is_counted_and_dropped() {
    let redis = RedisServer::start();
    let mode = SubscriptionMode::Dynamic;
    let a = Node::start(&redis, "a", mode).await;
    let b = Node::start(&redis, "b", mode).await;
    cluster_of(2, &[&a, &b], None).await;
    let a1 = client(&a.url(), "a1", &["r"]).await;
    within(a.client.ready()).await;
    subscribed(&redis, &room_channel("r"), 1).await;
    let c = redis::Client::open(redis.url()).unwrap();
    let mut conn = c.get_multiplexed_async_connection().await.unwrap();
    // The nodes' response channels: the only ones named after a 16-digit node id.
    let responses: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .arg("socket.io#/#????????????????#")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(responses.len(), 2, "{responses:?}");
    let garbage: [&[u8]; 5] = [
        b"{not json",
        b"\xc1",
        b"\x93\x01\x02\x03",
        br#"{"type":"x","uid":"u","nsp":"/","data":{}}"#,
        b"",
    ];
    for channel in responses
        .iter()
        .map(String::as_str)
        .chain(["socket.io#/#", "socket.io#/#r#"])
    {
        for g in garbage {
            let _: () = redis::cmd("SPUBLISH")
                .arg(channel)
                .arg(g)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
    // Each response channel reaches one node, the namespace's both, the room's one (A).
    let malformed = || a.client.stats().malformed() + b.client.stats().malformed();
    eventually(|| async { malformed() >= 25 }).await;
    assert_eq!(malformed(), 25);
    assert_eq!(a.client.stats().received() + b.client.stats().received(), 0);
    // Both still work together.
    b.io.to("r").emit("still", &1).unwrap();
    assert_eq!(expect(&a1, "still").await, vec![json!(1)]);
    assert_eq!(b.io.fetch_sockets().await.unwrap().len(), 1);
    a.serve.abort();
    b.serve.abort();
}
