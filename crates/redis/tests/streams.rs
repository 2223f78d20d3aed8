//! The streams adapter against real peers: its own `redis-server`, a Node.js socket.io 4.8
//! node with @socket.io/redis-streams-adapter 0.2.3, iolite nodes in this process, and
//! iolite-client clients (one recovering its session on another node, through a small TCP
//! proxy that switches its target).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure is the test failing

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, expect, within, NodePeer, RedisServer};
use iolite::{Recovery, SocketIo, SocketRef};
use iolite_client::{Lifecycle, Manager, Socket, Transport};
use iolite_redis::{StreamsClient, StreamsOptions};
use serde_json::json;
use tokio::sync::mpsc;

struct Node {
    io: SocketIo,
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
            let auth = socket.handshake().auth.clone();
            socket
                .set_data(&json!({"node": name, "name": auth["name"]}))
                .unwrap();
            for r in auth["rooms"].as_array().cloned().unwrap_or_default() {
                socket.join(r.as_str().unwrap().to_owned());
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
    Node {
        io,
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
    // The Node node's own client: the room broadcast, then `all`. It has been seen to get
    // the room broadcast twice from its own node (socket.io 4.8 + redis-streams-adapter
    // 0.2.3, Node to Node, iolite not involved), so repeats of it are skipped here.
    assert_eq!(
        expect(&cn, "from-node").await,
        vec![json!(1), json!({"x": "y"})]
    );
    let mut cn_next = common::next(&cn).await;
    while cn_next.0 == "from-node" {
        cn_next = common::next(&cn).await;
    }
    assert_eq!(cn_next, ("all".to_owned(), vec![json!("n")]));
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

/// A TCP proxy whose target can be switched: the client keeps one URL while the node
/// behind it changes.
async fn proxy(target: Arc<Mutex<u16>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = *target.lock().unwrap();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    port
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
    let target = Arc::new(Mutex::new(a.port));
    let port = proxy(target.clone()).await;
    let c = client(port, "rec", &["news"], true).await;
    let server_side = a.sockets.recv().await.unwrap();
    server_side.join("late-room".to_owned());
    let sid = c.id().unwrap();

    // One broadcast before the failover gives the client an offset.
    b.io.to("news").emit("n", &0).unwrap();
    assert_eq!(expect(&c, "n").await, vec![json!(0)]);

    // Node A goes away (its sockets' sessions are stored as they disconnect); the proxy
    // now leads to B.
    *target.lock().unwrap() = b.port;
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
    assert_eq!(s.data_value()["name"], "rec");

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
