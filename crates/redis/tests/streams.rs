//! The streams adapter against real peers: its own `redis-server`, a Node.js socket.io 4.8
//! node with @socket.io/redis-streams-adapter 0.2.3, iolite nodes in this process, and
//! iolite-client clients (one recovering its session on another node, through a small TCP
//! proxy that switches its target).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the test failing

mod common;

use std::time::Duration;

use common::{eventually, expect, within, NodePeer, Proxy, RedisServer};
use iolite::{Recovery, SocketIo, SocketRef};
use iolite_client::{Lifecycle, Manager, Socket, Transport};
use iolite_redis::{StreamsClient, StreamsOptions};
use serde_json::json;
use tokio::sync::mpsc;

struct Node {
    io: SocketIo,
    client: StreamsClient,
    port: u16,
    sockets: mpsc::UnboundedReceiver<SocketRef>,
    serve: tokio::task::JoinHandle<()>,
}

fn options() -> StreamsOptions {
    StreamsOptions {
        block_time: Duration::from_millis(500),
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_secs(2),
        reconnect_delay: Duration::from_millis(50),
        reconnect_delay_max: Duration::from_millis(400),
        ..Default::default()
    }
}

async fn node(redis: &RedisServer, name: &'static str, recovery: bool) -> Node {
    let client = StreamsClient::with_options(&redis.url(), options()).unwrap();
    let mut b = SocketIo::builder().adapter(client.adapter_factory());
    if recovery {
        b = b.recovery(Recovery {
            max_disconnection_duration: Duration::from_secs(30),
            ..Default::default()
        });
    }
    let io = b.build();
    let (tx, sockets) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        let tx = tx.clone();
        async move {
            // A recovered socket comes back with its data and rooms: keep them.
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let io2 = io.clone();
    let serve = tokio::spawn(async move {
        let _ = io2.serve(listener).await;
    });
    within(client.ready()).await;
    Node {
        io,
        client,
        port,
        sockets,
        serve,
    }
}

async fn client(port: u16, name: &str, rooms: &[&str], reconnect: bool) -> Socket {
    let m = Manager::builder(format!("http://127.0.0.1:{port}"))
        .transports([Transport::WebSocket])
        .reconnection(reconnect)
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(300))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    within(
        m.socket("/")
            .auth(json!({"name": name, "rooms": rooms}))
            .connect(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iolite_and_node_form_one_cluster() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", false).await;
    let mut js = NodePeer::start_env(&redis, 5000, &[("ADAPTER", "streams")]).await;
    // Each side learns of the other from its heartbeats.
    let io = a.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 2 }
    })
    .await;
    let mut n = 0;
    while js.ok("serverCount", json!({})).await != json!(2) {
        n += 1;
        assert!(n < 100, "the Node node never counted the iolite node");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ca = client(a.port, "ca", &["r"], false).await;
    a.sockets.recv().await.unwrap();
    let cn = client(js.port, "cn", &["r"], false).await;
    js.event("connection").await;
    let other = client(a.port, "other", &[], false).await;
    a.sockets.recv().await.unwrap();

    // Node -> iolite, to a room, and to everyone.
    js.ok(
        "emit",
        json!({"room": "r", "event": "from-node", "args": [1, {"x": "y"}]}),
    )
    .await;
    assert_eq!(
        expect(&ca, "from-node").await,
        vec![json!(1), json!({"x": "y"})]
    );
    js.ok("emit", json!({"event": "all", "args": ["n"]})).await;
    for (who, s) in [("other", &other), ("ca", &ca)] {
        let (name, args) = common::next(s).await;
        assert_eq!((who, name.as_str(), args), (who, "all", vec![json!("n")]));
    }
    // The Node node's own client: the room broadcast, then `all`, each once (see
    // `every_broadcast_arrives_once_on_every_node`).
    assert_eq!(
        expect(&cn, "from-node").await,
        vec![json!(1), json!({"x": "y"})]
    );
    assert_eq!(expect(&cn, "all").await, vec![json!("n")]);
    // iolite -> Node (and this node's own clients, read back from the stream).
    a.io.to("r")
        .emit("from-iolite", &json!({"k": [1, 2]}))
        .unwrap();
    assert_eq!(expect(&cn, "from-iolite").await, vec![json!({"k": [1, 2]})]);
    assert_eq!(expect(&ca, "from-iolite").await, vec![json!({"k": [1, 2]})]);
    // fetch_sockets, both ways.
    let mut names: Vec<String> =
        a.io.to("r")
            .fetch_sockets()
            .await
            .unwrap()
            .iter()
            .map(|s| s.data_value()["name"].as_str().unwrap().to_owned())
            .collect();
    names.sort();
    assert_eq!(names, ["ca", "cn"]);
    let from_node = js.ok("fetchSockets", json!({})).await;
    let mut names: Vec<String> = from_node
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["data"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ca", "cn", "other"]);
    let ours = from_node
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["data"]["name"] == "ca")
        .unwrap();
    assert_eq!(ours["data"]["node"], "a");
    assert!(ours["rooms"].as_array().unwrap().contains(&json!("r")));

    // A node that leaves is no longer waited for: Node's close tells the cluster.
    drop(js);
    let io = a.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 1 }
    })
    .await;
    assert_eq!(a.io.fetch_sockets().await.unwrap().len(), 2);
    a.serve.abort();
}

/// Whether the connection after the next disconnection recovered the session.
async fn connected(s: &Socket) -> bool {
    within(async {
        while !matches!(s.next_lifecycle().await, Lifecycle::Disconnect(_)) {}
        loop {
            if let Lifecycle::Connect { recovered } = s.next_lifecycle().await {
                return recovered;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_recovers_on_another_node() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", true).await;
    let mut b = node(&redis, "b", true).await;
    let io = b.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 2 }
    })
    .await;
    let proxy = Proxy::start(a.port).await;
    let c = client(proxy.port, "rec", &["news"], true).await;
    let server_side = a.sockets.recv().await.unwrap();
    server_side.join("late-room".to_owned());
    let sid = c.id().unwrap();

    // One broadcast before the failover gives the client an offset.
    b.io.to("news").emit("n", &0).unwrap();
    assert_eq!(expect(&c, "n").await, vec![json!(0)]);

    // Node A goes away (its sockets' sessions are stored as they disconnect); the proxy
    // now leads to B.
    proxy.point_to(Some(b.port));
    a.io.close();
    a.serve.abort();
    // The sessions are written before A's adapter says goodbye: wait for B to see it leave.
    let io = b.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 1 }
    })
    .await;
    for i in 1..=5 {
        b.io.to("news").emit("n", &i).unwrap();
    }
    b.io.to("elsewhere").emit("n", &100).unwrap();
    b.io.emit("everyone", &"e").unwrap();

    assert!(connected(&c).await, "the session was not recovered");
    assert_eq!(c.id().unwrap(), sid, "the socket id came back");
    // As in Node, the connection handler runs again for the recovered socket, on B.
    assert_eq!(b.sockets.recv().await.unwrap().id().as_str(), sid);
    for i in 1..=5 {
        assert_eq!(expect(&c, "n").await, vec![json!(i)], "missed event {i}");
    }
    assert_eq!(expect(&c, "everyone").await, vec![json!("e")]);
    // Live again on B, and nothing twice.
    b.io.to("late-room").emit("live", &"l").unwrap();
    assert_eq!(expect(&c, "live").await, vec![json!("l")]);
    let sockets = b.io.fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    let s = &sockets[0];
    assert_eq!(s.id().as_str(), sid);
    assert_eq!(s.data_value(), &json!({"node": "a", "name": "rec"}));

    let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    let mut want = vec!["late-room".to_owned(), "news".to_owned(), sid.clone()];
    want.sort();
    assert_eq!(rooms, want);

    drop(a);
    b.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sessions_and_bad_offsets_connect_as_new() {
    let redis = RedisServer::start();
    let b = node(&redis, "b", true).await;
    let ns = b.io.of("/").unwrap();
    let adapter = ns.adapter();
    for (pid, offset) in [
        ("AAAAAAAAAAAAAAAAAAAA", "0-0"),
        ("AAAAAAAAAAAAAAAAAAAA", "not-an-offset"),
        ("AAAAAAAAAAAAAAAAAAAA", "$"),
        ("", "1-1"),
    ] {
        let restored = adapter
            .restore_session(pid, offset, Box::new(|_| panic!("nothing to restore")))
            .await;
        assert_eq!(restored, Ok(false), "{pid} {offset}");
    }
    b.serve.abort();
}

/// Waits until the iolite node and the Node node count each other.
async fn cluster_of_two(a: &Node, js: &mut NodePeer) {
    let io = a.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 2 }
    })
    .await;
    let mut n = 0;
    while js.ok("serverCount", json!({})).await != json!(2) {
        n += 1;
        assert!(n < 100, "the Node node never counted the iolite node");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until exactly one recovery session is stored.
async fn session_stored(redis: &RedisServer) {
    let c = raw(redis).await;
    eventually(|| {
        let mut c = c.clone();
        async move {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("sio:session:*")
                .query_async(&mut c)
                .await
                .unwrap();
            keys.len() == 1
        }
    })
    .await;
}

/// Waits until an entry of the stream holds `needle` (a broadcast's event name).
async fn in_stream(redis: &RedisServer, needle: &str) {
    let c = raw(redis).await;
    eventually(|| {
        let mut c = c.clone();
        async move {
            let v: redis::Value = redis::cmd("XRANGE")
                .arg("socket.io")
                .arg("-")
                .arg("+")
                .query_async(&mut c)
                .await
                .unwrap();
            format!("{v:?}").contains(needle)
        }
    })
    .await;
}

/// The events a recovered client must get, in stream order: five to its first room, one
/// to everyone, one to the room it joined server-side, then one from the other side.
async fn expect_missed(c: &Socket) {
    for i in 1..=5 {
        assert_eq!(expect(c, "n").await, vec![json!(i)], "missed event {i}");
    }
    assert_eq!(expect(c, "everyone").await, vec![json!("e")]);
    assert_eq!(expect(c, "late").await, vec![json!("x")]);
    assert_eq!(expect(c, "from-node").await, vec![json!("m")]);
}

/// Emits what `expect_missed` expects (and one to a room the client is not in) from the
/// iolite node, then one from the Node node after them.
async fn emit_missed(redis: &RedisServer, a: &Node, js: &mut NodePeer) {
    for i in 1..=5 {
        a.io.to("news").emit("n", &i).unwrap();
    }
    a.io.to("elsewhere").emit("n", &100).unwrap();
    a.io.emit("everyone", &"e").unwrap();
    a.io.to("late-room").emit("late", &"x").unwrap();
    within(a.client.flush()).await;
    js.ok(
        "emit",
        json!({"room": "news", "event": "from-node", "args": ["m"]}),
    )
    .await;
    in_stream(redis, "from-node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_js_session_recovers_on_iolite() {
    let redis = RedisServer::start();
    let recovery = [("ADAPTER", "streams"), ("RECOVERY", "1")];
    let mut js = NodePeer::start_env(&redis, 5000, &recovery).await;
    let mut b = node(&redis, "b", true).await;
    cluster_of_two(&b, &mut js).await;
    let proxy = Proxy::start(js.port).await;
    let c = client(proxy.port, "rec", &["news"], true).await;
    let sid = c.id().unwrap();
    assert_eq!(js.event("connection").await["id"], json!(sid));
    js.ok(
        "remote",
        json!({"sid": sid, "action": "join", "room": "late-room"}),
    )
    .await;
    // A broadcast the Node node read from the stream gives the client an offset.
    b.io.to("news").emit("n", &0).unwrap();
    assert_eq!(expect(&c, "n").await, vec![json!(0)]);

    // The client's connection breaks (the Node node stores its session); while it is
    // away, both sides broadcast.
    proxy.point_to(None);
    proxy.cut();
    session_stored(&redis).await;
    emit_missed(&redis, &b, &mut js).await;

    // It comes back through the same URL, now to the iolite node.
    proxy.point_to(Some(b.port));
    assert!(connected(&c).await, "the session was not recovered");
    assert_eq!(c.id().unwrap(), sid, "the socket id came back");
    let s = within(b.sockets.recv()).await.unwrap();
    assert_eq!(s.id().as_str(), sid);
    assert!(s.recovered());
    expect_missed(&c).await;
    // Live on iolite now, and nothing came twice: the next event is the live one.
    b.io.to("late-room").emit("live", &"l").unwrap();
    assert_eq!(expect(&c, "live").await, vec![json!("l")]);

    // The Node session's data and rooms, on iolite.
    assert_eq!(s.data_value(), json!({"node": "node", "name": "rec"}));
    let mut rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    let mut want = vec!["late-room".to_owned(), "news".to_owned(), sid.clone()];
    want.sort();
    assert_eq!(rooms, want);
    // The session was taken: nobody can restore it again.
    let mut conn = raw(&redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sio:session:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    b.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iolite_session_recovers_on_node_js() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", true).await;
    let recovery = [("ADAPTER", "streams"), ("RECOVERY", "1")];
    let mut js = NodePeer::start_env(&redis, 5000, &recovery).await;
    cluster_of_two(&a, &mut js).await;
    let proxy = Proxy::start(a.port).await;
    let c = client(proxy.port, "rec", &["news"], true).await;
    let sid = c.id().unwrap();
    within(a.sockets.recv())
        .await
        .unwrap()
        .join("late-room".to_owned());
    // This node's own broadcast, read back from the stream, gives the client an offset.
    a.io.to("news").emit("n", &0).unwrap();
    assert_eq!(expect(&c, "n").await, vec![json!(0)]);

    proxy.point_to(None);
    proxy.cut();
    session_stored(&redis).await;
    emit_missed(&redis, &a, &mut js).await;

    proxy.point_to(Some(js.port));
    assert!(connected(&c).await, "the session was not recovered");
    assert_eq!(c.id().unwrap(), sid, "the socket id came back");
    let ev = js.event("connection").await;
    assert_eq!((&ev["id"], &ev["recovered"]), (&json!(sid), &json!(true)));
    expect_missed(&c).await;
    js.ok(
        "emit",
        json!({"room": "late-room", "event": "live", "args": ["l"]}),
    )
    .await;
    assert_eq!(expect(&c, "live").await, vec![json!("l")]);

    // The iolite session's data and rooms, on Node.
    let local = js.ok("localSockets", json!({})).await;
    let mut rooms: Vec<String> = local[0]["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    rooms.sort();
    let mut want = vec!["late-room".to_owned(), "news".to_owned(), sid.clone()];
    want.sort();
    assert_eq!((local.as_array().unwrap().len(), rooms), (1, want));
    let found = js.ok("fetchSockets", json!({"room": "late-room"})).await;
    assert_eq!(found[0]["data"], json!({"node": "a", "name": "rec"}));
    a.serve.abort();
}

/// Every broadcast reaches every client in its room once, in its sender's order: Node's
/// to the Node node's own client and to iolite's, iolite's to both.
///
/// An earlier version of `iolite_and_node_form_one_cluster` skipped a repeated Node
/// broadcast on the Node node's own client. It could not be reproduced since (that test
/// strict, 44 runs, 4 at a time; 30 rounds of this scenario with iolite in the cluster and
/// 30 with two Node nodes; 50 rounds of Node-only nodes with socket.io-client), and
/// neither side can cause it: Node delivers its own broadcast once (`broadcast` publishes,
/// then delivers locally; `onMessage` drops entries of its own uid), and iolite writes a
/// BROADCAST entry only for its own broadcasts (an entry read from the stream is delivered
/// locally, never written again). So the assertions are strict everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_arrives_once_on_every_node() {
    let redis = RedisServer::start();
    let mut a = node(&redis, "a", false).await;
    let mut js = NodePeer::start_env(&redis, 5000, &[("ADAPTER", "streams")]).await;
    cluster_of_two(&a, &mut js).await;
    let ca = client(a.port, "ca", &["r"], false).await;
    within(a.sockets.recv()).await.unwrap();
    let cn = client(js.port, "cn", &["r"], false).await;
    js.event("connection").await;

    const ROUNDS: i64 = 20;
    for i in 0..ROUNDS {
        js.ok("emit", json!({"room": "r", "event": "node", "args": [i]}))
            .await;
        a.io.to("r").emit("iolite", &i).unwrap();
    }
    js.ok("emit", json!({"room": "r", "event": "end-node"}))
        .await;
    a.io.to("r").emit("end-iolite", &()).unwrap();
    for (who, c) in [("ca", &ca), ("cn", &cn)] {
        let (mut node, mut iolite) = (Vec::new(), Vec::new());
        let mut ends = 0;
        while ends < 2 {
            let (name, args) = common::next(c).await;
            match name.as_str() {
                "node" => node.push(args[0].as_i64().unwrap()),
                "iolite" => iolite.push(args[0].as_i64().unwrap()),
                "end-node" | "end-iolite" => ends += 1,
                other => panic!("{who}: unexpected {other}"),
            }
        }
        let want: Vec<i64> = (0..ROUNDS).collect();
        assert_eq!((who, &node, &iolite), (who, &want, &want));
    }
    // And nothing after the ends.
    a.io.emit("last", &()).unwrap();
    for c in [&ca, &cn] {
        assert_eq!(common::next(c).await.0, "last");
    }
    a.serve.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_while_broadcasting_reconnects_and_keeps_serving() {
    let mut redis = RedisServer::start();
    let a = node(&redis, "a", true).await;
    let b = node(&redis, "b", true).await;
    let io = a.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 2 }
    })
    .await;
    let a1 = client(a.port, "a1", &[], false).await;
    let b1 = client(b.port, "b1", &[], false).await;
    a.io.emit("before", &1).unwrap();
    expect(&a1, "before").await;
    expect(&b1, "before").await;
    let stats = a.client.stats();
    assert!(stats.is_connected());
    assert!(stats.published() > 0);
    assert_eq!(stats.failures(), 0);
    let received = b.client.stats().received();
    assert!(received > 0);

    // Redis gone: every broadcast still reaches this node's own clients (delivered here when
    // it cannot be written), nothing panics, failures are counted and the link shows down.
    redis.stop();
    let outage = std::time::Instant::now();
    within(async {
        let mut i = 0;
        loop {
            a.io.emit("during", &i).unwrap();
            assert_eq!(expect(&a1, "during").await, vec![json!(i)]);
            b.io.emit("b-during", &i).unwrap();
            assert_eq!(expect(&b1, "b-during").await, vec![json!(i)]);
            if stats.publish_failures() > 0
                && stats.connection_failures() > 0
                && !stats.is_connected()
                && !b.client.stats().is_connected()
                && outage.elapsed() > Duration::from_millis(1500)
            {
                break;
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // With a doubling wait (50 ms up to 400 ms) each connection tried a handful of times
    // in 1.5 s; retrying every 50 ms would be 30 each.
    let tried = stats.connection_failures();
    assert!(tried < 25, "{tried} connection attempts");

    redis.restart();
    for s in [stats, b.client.stats()] {
        eventually(|| {
            let up = s.is_connected();
            async move { up }
        })
        .await;
        assert!(s.resubscriptions() >= 1);
    }
    // The nodes find each other again and broadcasts cross both ways.
    let io = a.io.clone();
    eventually(|| {
        let io = io.clone();
        async move { io.of("/").unwrap().adapter().server_count().await == 2 }
    })
    .await;
    a.io.emit("after", &2).unwrap();
    assert_eq!(expect(&a1, "after").await, vec![json!(2)]);
    assert_eq!(expect(&b1, "after").await, vec![json!(2)]);
    b.io.emit("after-b", &3).unwrap();
    assert_eq!(expect(&a1, "after-b").await, vec![json!(3)]);
    assert_eq!(expect(&b1, "after-b").await, vec![json!(3)]);
    assert!(b.client.stats().received() > received);
    a.serve.abort();
    b.serve.abort();
}
